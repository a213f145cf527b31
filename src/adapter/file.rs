//! The file transport: picks files in an exchange directory and streams their
//! rows (CSV in any encoding, XLSX by sheet, JSON) in chunks, on a blocking
//! thread, so a large file never sits in memory whole.
//!
//! A row that cannot be read (wrong number of cells, bytes that are not valid
//! in the file's encoding) comes out as a bad row with its reason, to be
//! quarantined; the rest of the file still lands.
//!
//! A file that cannot be read faithfully is refused whole, with an error that
//! fails the run (which keeps nothing of it): a column name given twice, whose
//! last column would win over the first (and re-key every row if that column
//! is the key); a JSON object naming a key twice; a cell given
//! twice or rows out of order in a sheet; a workbook whose parts would inflate
//! past `max_inflated_bytes`. None of these may cost the process: the daemon
//! runs every adapter in it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use calamine::{DataRef, Reader, Xlsx};
use serde_json::{Map, Number, Value};
use tokio::sync::mpsc;

use super::Unbuildable;
use super::json::UniqueKeys;

use super::http::FetchError;
use super::manifest::{FileFormat, Take, Transport};
use super::mapping::Row;

/// One row as read: a row, or why it is unreadable with its raw text.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceRow {
    Ok(Row),
    Bad { reason: String, raw: String },
}

impl SourceRow {
    /// A JSON value as a row: an object, or a bad row naming what it is.
    pub fn from_json(value: Value) -> SourceRow {
        match value {
            Value::Object(row) => SourceRow::Ok(row),
            other => SourceRow::Bad {
                reason: "not an object".into(),
                raw: other.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileSource {
    dir: PathBuf,
    pattern: String,
    take: Take,
    format: FileFormat,
    encoding: &'static encoding_rs::Encoding,
    sheet: Option<String>,
    max_file_bytes: u64,
    max_inflated_bytes: u64,
}

/// Does `name` match `pattern`, where `*` matches any run of characters?
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == name;
    }
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl FileSource {
    pub fn new(transport: &Transport, dir: Option<&Path>) -> Result<FileSource, Unbuildable> {
        let Transport::File {
            pattern,
            take,
            format,
            encoding,
            sheet,
            max_file_bytes,
            max_inflated_bytes,
        } = transport
        else {
            return Err("not a file transport".into());
        };
        let encoding = match encoding {
            Some(label) => encoding_rs::Encoding::for_label(label.as_bytes())
                .ok_or_else(|| format!("unknown encoding {label:?}"))?,
            None => encoding_rs::UTF_8,
        };
        Ok(FileSource {
            dir: dir.ok_or("dir is not set")?.to_owned(),
            pattern: pattern.clone(),
            take: *take,
            format: *format,
            encoding,
            sheet: sheet.clone(),
            max_file_bytes: *max_file_bytes,
            max_inflated_bytes: *max_inflated_bytes,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files to read now, in name order. A name ending in `.part` is a
    /// file still being written and is never taken.
    pub fn select(&self) -> Result<Vec<PathBuf>, FetchError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| FetchError::File(format!("cannot list {}: {e}", self.dir.display())))?;
        let mut names: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                FetchError::File(format!("cannot list {}: {e}", self.dir.display()))
            })?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.ends_with(".part") && matches(&self.pattern, &name) && entry.path().is_file() {
                names.push(name);
            }
        }
        names.sort();
        if self.take == Take::Newest {
            names = names.pop().into_iter().collect();
        }
        Ok(names.into_iter().map(|n| self.dir.join(n)).collect())
    }

    /// Streams the rows of one file in chunks of `chunk` rows into `out`.
    /// Runs on the calling (blocking) thread; the receiver applies backpressure.
    pub fn read(
        &self,
        path: &Path,
        chunk: usize,
        out: &mpsc::Sender<Result<Vec<SourceRow>, FetchError>>,
    ) {
        // The parsers below have panicked on malformed input (calamine on an
        // overlong cell reference): a file that makes one panic is a bad
        // file, reported like any other, not a dead reader.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.read_inner(path, chunk.max(1), out)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(FetchError::File(format!(
                "{}: the file is malformed ({what})",
                path.display()
            )))
        });
        if let Err(e) = result {
            let _ = out.blocking_send(Err(e));
        }
    }

    fn read_inner(
        &self,
        path: &Path,
        chunk: usize,
        out: &mpsc::Sender<Result<Vec<SourceRow>, FetchError>>,
    ) -> Result<(), FetchError> {
        let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
        // One handle from the size check to the last row: a file replaced
        // meanwhile is not read half old, half new.
        let file = File::open(path).map_err(|e| fail(&e))?;
        let size = file.metadata().map_err(|e| fail(&e))?.len();
        if size > self.max_file_bytes {
            return Err(fail(&format!(
                "{size} bytes is over the limit of {}",
                self.max_file_bytes
            )));
        }
        let mut buffer = Vec::with_capacity(chunk);
        let mut emit = |row: SourceRow| -> Result<(), FetchError> {
            buffer.push(row);
            if buffer.len() >= chunk {
                let full = std::mem::replace(&mut buffer, Vec::with_capacity(chunk));
                out.blocking_send(Ok(full))
                    .map_err(|_| FetchError::File("the run was cancelled".into()))?;
            }
            Ok(())
        };
        match self.format {
            FileFormat::Csv => self.read_csv(path, file, &mut emit)?,
            FileFormat::Xlsx => self.read_xlsx(path, file, &mut emit)?,
            FileFormat::Json => read_json(path, file, &mut emit)?,
        }
        if !buffer.is_empty() {
            out.blocking_send(Ok(buffer))
                .map_err(|_| FetchError::File("the run was cancelled".into()))?;
        }
        Ok(())
    }

    fn read_csv(
        &self,
        path: &Path,
        file: File,
        emit: &mut dyn FnMut(SourceRow) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
        // A byte order mark names the encoding, whatever the manifest says:
        // a GBK source re-saved as "CSV UTF-8" starts with one, and decoding
        // it as GBK would land garbled text without a single bad byte.
        let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(self.encoding))
            .bom_override(true)
            .build(BufReader::new(file));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(decoded);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| fail(&e))?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
            .collect();
        if let Some((name, first, again)) =
            first_duplicate((1usize..).zip(headers.iter().map(String::as_str)))
        {
            return Err(fail(&format!(
                "column {name:?} appears twice in the header (columns {first} and {again}); \
                 the file is refused whole"
            )));
        }
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let cells: Vec<&str> = record.iter().collect();
                    let raw = || serde_json::to_string(&cells).unwrap_or_default();
                    let row = if cells.len() != headers.len() {
                        SourceRow::Bad {
                            reason: format!(
                                "line {line}: {} cells where the header has {}",
                                cells.len(),
                                headers.len()
                            ),
                            raw: raw(),
                        }
                    } else if cells.iter().any(|c| c.contains('\u{fffd}')) {
                        SourceRow::Bad {
                            reason: format!(
                                "line {line}: bytes that are not valid {}",
                                self.encoding.name()
                            ),
                            raw: raw(),
                        }
                    } else {
                        SourceRow::Ok(
                            headers
                                .iter()
                                .zip(cells)
                                .map(|(h, c)| (h.clone(), Value::String(c.to_owned())))
                                .collect(),
                        )
                    };
                    emit(row)?;
                }
                Err(e) => {
                    // A broken quote or an I/O error ends the file here; what
                    // was read stays, and the snapshot will not count as clean.
                    emit(SourceRow::Bad {
                        reason: format!("line {line}: {e}"),
                        raw: String::new(),
                    })?;
                    break;
                }
            }
        }
        Ok(())
    }

    fn read_xlsx(
        &self,
        path: &Path,
        file: File,
        emit: &mut dyn FnMut(SourceRow) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
        let refuse = |what: String| fail(&format!("{what}; the file is refused whole"));
        let sheet = self.sheet.as_deref().unwrap_or_default();
        let mut reader = BufReader::new(file);
        // calamine inflates and holds the shared strings whole as it opens
        // the workbook, so the sizes are checked before it sees the file,
        // on the very handle it then reads.
        check_inflation(&mut reader, self.max_inflated_bytes).map_err(|e| fail(&e))?;
        reader.rewind().map_err(|e| fail(&e))?;
        let mut workbook: Xlsx<_> = Xlsx::new(reader).map_err(|e| fail(&e))?;
        let mut cells = workbook
            .worksheet_cells_reader(sheet)
            .map_err(|e| fail(&format!("sheet {sheet:?}: {e}")))?;
        let mut headers: BTreeMap<u32, String> = BTreeMap::new();
        let mut header_row: Option<u32> = None;
        let mut header_checked = false;
        let check_header = |headers: &BTreeMap<u32, String>| match first_duplicate(
            headers.iter().map(|(c, name)| (*c, name.as_str())),
        ) {
            Some((name, first, again)) => Err(refuse(format!(
                "column {name:?} appears twice in the header (columns {} and {})",
                column_letters(first),
                column_letters(again)
            ))),
            None => Ok(()),
        };
        let mut last_row: Option<u32> = None;
        let mut current: Option<(u32, Row)> = None;
        loop {
            let cell = cells.next_cell().map_err(|e| fail(&e))?;
            let Some(cell) = cell else { break };
            let (r, c) = cell.get_position();
            // A formatted but empty cell holds nothing: it must neither make
            // its row the header (a bordered blank row above the real one
            // would hide every column) nor start a row of its own.
            let Some(value) = cell_value(cell.get_value()) else {
                continue;
            };
            // A row that comes back after another would be read as two
            // rows, each with part of its cells.
            if let Some(last) = last_row
                && r < last
            {
                return Err(refuse(format!(
                    "row {} comes after row {}",
                    r + 1,
                    last + 1
                )));
            }
            last_row = Some(r);
            if header_row.is_none() {
                header_row = Some(r);
            }
            if header_row == Some(r) {
                let name = match value {
                    Value::String(name) => name.trim().to_owned(),
                    other => other.to_string(),
                };
                if headers.insert(c, name).is_some() {
                    return Err(refuse(format!("cell {} appears twice", cell_name(r, c))));
                }
                continue;
            }
            if !header_checked {
                check_header(&headers)?;
                header_checked = true;
            }
            if current.as_ref().is_some_and(|(row, _)| *row != r)
                && let Some((_, row)) = current.take()
            {
                emit(SourceRow::Ok(row))?;
            }
            let (_, row) = current.get_or_insert_with(|| (r, Map::new()));
            if let Some(name) = headers.get(&c)
                && row.insert(name.clone(), value).is_some()
            {
                return Err(refuse(format!("cell {} appears twice", cell_name(r, c))));
            }
        }
        // A header alone is an empty snapshot, which deletes every record:
        // it must be as readable as one with rows.
        if !header_checked {
            check_header(&headers)?;
        }
        if let Some((_, row)) = current.take() {
            emit(SourceRow::Ok(row))?;
        }
        Ok(())
    }
}

/// The first name given to two columns, with both places. A blank name
/// names no column (a trailing comma, a header cell of spaces), and no
/// manifest field can read one, so blanks may repeat.
fn first_duplicate<'a, P: Copy>(
    columns: impl IntoIterator<Item = (P, &'a str)>,
) -> Option<(&'a str, P, P)> {
    let mut seen: HashMap<&str, P> = HashMap::new();
    for (at, name) in columns {
        if name.is_empty() {
            continue;
        }
        if let Some(&first) = seen.get(name) {
            return Some((name, first, at));
        }
        seen.insert(name, at);
    }
    None
}

/// A sheet's column as a clerk reads it: 0 is `A`, 26 is `AA`.
fn column_letters(column: u32) -> String {
    let mut n = u64::from(column) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        n -= 1;
        letters.push(char::from(b'A' + (n % 26) as u8));
        n /= 26;
    }
    letters.iter().rev().collect()
}

/// A cell's place as a clerk reads it: (0, 0) is `A1`.
fn cell_name(row: u32, column: u32) -> String {
    format!("{}{}", column_letters(column), u64::from(row) + 1)
}

/// Why a workbook is refused before it is parsed.
#[derive(Debug, thiserror::Error)]
enum Inflation {
    #[error(
        "its parts declare {declared} bytes uncompressed ({part}: {part_bytes}), over the \
         limit of {limit} (max_inflated_bytes); the file is refused whole"
    )]
    Declared {
        declared: u64,
        part: String,
        part_bytes: u64,
        limit: u64,
    },
    #[error(
        "{part} inflates past the limit of {limit} (max_inflated_bytes) though the parts \
         declare {declared} bytes in all; the file is refused whole"
    )]
    Inflated {
        part: String,
        limit: u64,
        declared: u64,
    },
    #[error(
        "{part} claims {claimed} shared strings, more than its {bytes} bytes can hold; \
         the file is refused whole"
    )]
    SharedStrings {
        part: String,
        claimed: u128,
        bytes: u64,
    },
    #[error("two parts are named {0:?} (letter case and slashes aside); the file is refused whole")]
    SameName(String),
    #[error("two parts have one name; the file is refused whole")]
    RepeatedName,
    #[error("{part} cannot be inflated ({reason}); the file is refused whole")]
    Unreadable { part: String, reason: String },
}

/// The shortest shared string there is: `<si/>`.
const SHORTEST_SHARED_STRING: u128 = 5;

/// Checks that a workbook can be parsed in bounded memory: what its parts
/// declare, then what they really inflate to (each one streamed through a
/// counting sink that stops at the limit), and that the shared strings do
/// not claim more strings than their bytes can hold, which calamine 0.38
/// reserves room for up front (a 6 KB workbook claiming 4294967295 aborted
/// the process). Part names are compared as calamine looks them up, so that
/// the part checked is the part parsed.
fn check_inflation<R: Read + Seek>(reader: R, limit: u64) -> Result<(), Inflation> {
    // What the zip crate cannot open calamine cannot open either (it reads
    // through the same crate), and it says better why: a password, say.
    let Ok(mut archive) = zip::ZipArchive::new(reader) else {
        return Ok(());
    };
    if archive.has_duplicate_names() {
        return Err(Inflation::RepeatedName);
    }
    let mut names = Vec::with_capacity(archive.len());
    let mut lookups = HashSet::new();
    let mut declared = 0u64;
    let mut biggest = (String::new(), 0u64);
    for i in 0..archive.len() {
        let entry = archive
            .by_index_data(i)
            .map_err(|e| Inflation::Unreadable {
                part: format!("part {i}"),
                reason: e.to_string(),
            })?;
        let name = entry
            .name()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned());
        let lookup = name.replace('\\', "/").to_ascii_lowercase();
        if !lookups.insert(lookup.clone()) {
            return Err(Inflation::SameName(name));
        }
        declared = declared.saturating_add(entry.size());
        if entry.size() > biggest.1 {
            biggest = (name.clone(), entry.size());
        }
        names.push((name, lookup));
    }
    if declared > limit {
        return Err(Inflation::Declared {
            declared,
            part: biggest.0,
            part_bytes: biggest.1,
            limit,
        });
    }
    let mut left = limit;
    for (i, (name, lookup)) in names.into_iter().enumerate() {
        let unreadable = |e: &dyn fmt::Display| Inflation::Unreadable {
            part: name.clone(),
            reason: e.to_string(),
        };
        let mut part = archive.by_index(i).map_err(|e| unreadable(&e))?;
        let (inflated, claimed) = if lookup.ends_with("sharedstrings.xml") {
            let mut claimed = None;
            let inflated = inflate_within(&mut part, left, |head| {
                claimed = claimed_strings(head);
            });
            (inflated, claimed)
        } else {
            (inflate_within(&mut part, left, |_| {}), None)
        };
        let Some(inflated) = inflated.map_err(|e| unreadable(&e))? else {
            return Err(Inflation::Inflated {
                part: name,
                limit,
                declared,
            });
        };
        left -= inflated;
        if let Some(claimed) = claimed
            && claimed.saturating_mul(SHORTEST_SHARED_STRING) > u128::from(inflated)
        {
            return Err(Inflation::SharedStrings {
                part: name,
                claimed,
                bytes: inflated,
            });
        }
    }
    Ok(())
}

/// Reads `part` to its end into nothing, or stops once it gives more than
/// `limit` bytes: `Some(bytes)`, or `None` past the limit. `look` sees the
/// bytes first, through the same count, and may leave any of them unread.
fn inflate_within(
    part: &mut dyn Read,
    limit: u64,
    look: impl FnOnce(&mut dyn Read),
) -> std::io::Result<Option<u64>> {
    let budget = limit.saturating_add(1);
    let mut counted = part.take(budget);
    look(&mut counted);
    std::io::copy(&mut counted, &mut std::io::sink())?;
    let inflated = budget - counted.limit();
    Ok((inflated <= limit).then_some(inflated))
}

/// The number of strings a shared strings part claims, read from the same
/// element calamine reads it from (the first `sst`, by the same parser and
/// settings), as the largest number any `uniqueCount` there could be taken
/// to say: a count this reading misses must not be one calamine finds.
fn claimed_strings(part: &mut dyn Read) -> Option<u128> {
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(part));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(e)) if e.local_name().as_ref() == "sst" => {
                return Some(largest_count(e.attributes_raw().as_bytes()));
            }
            // calamine stops at the same place, with an error: it reserves
            // nothing.
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The largest run of digits in any `uniqueCount="…"` of raw attributes.
fn largest_count(attributes: &[u8]) -> u128 {
    const KEY: &[u8] = b"uniqueCount";
    let mut most = 0;
    let mut rest = attributes;
    while let Some(at) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[at + KEY.len()..];
        let Some(value) = rest.trim_ascii_start().strip_prefix(b"=") else {
            continue;
        };
        let value = value.trim_ascii_start();
        let Some((&quote, value)) = value.split_first() else {
            continue;
        };
        if quote != b'"' && quote != b'\'' {
            continue;
        }
        let value = value.split(|&b| b == quote).next().unwrap_or_default();
        for digits in value.split(|b| !b.is_ascii_digit()) {
            let n = digits.iter().fold(0u128, |n, d| {
                n.saturating_mul(10).saturating_add(u128::from(d - b'0'))
            });
            most = most.max(n);
        }
    }
    most
}

/// A cell as JSON: text as a string, numbers as numbers (whole ones as
/// integers, so codes and years read as `370101`, not `370101.0`).
fn cell_value(cell: &DataRef<'_>) -> Option<Value> {
    match cell {
        DataRef::Empty => None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Some(Value::String(s.clone()))
        }
        DataRef::SharedString(s) => Some(Value::String((*s).to_owned())),
        DataRef::Int(i) => Some(Value::from(*i)),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(Value::from(*f as i64)),
        DataRef::Float(f) => Number::from_f64(*f).map(Value::Number),
        DataRef::Bool(b) => Some(Value::Bool(*b)),
        DataRef::DateTime(d) => Some(Value::String(d.to_string())),
        DataRef::Error(e) => Some(Value::String(format!("#{e:?}"))),
    }
}

fn read_json(
    path: &Path,
    file: File,
    emit: &mut dyn FnMut(SourceRow) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
    let reader = BufReader::new(file);
    // One object per line, or one array of objects.
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<UniqueKeys>() {
        // A key given twice is a data error; a syntax error is not, and is
        // worded by serde_json alone, as before.
        let UniqueKeys(value) = value.map_err(|e| {
            if e.is_data() {
                fail(&format!("{e}; the file is refused whole"))
            } else {
                fail(&e)
            }
        })?;
        let values = match value {
            Value::Array(values) => values,
            other => vec![other],
        };
        for v in values {
            emit(SourceRow::from_json(v))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_shells_do() {
        assert!(matches(
            "audit_findings_*.csv",
            "audit_findings_20210930.csv"
        ));
        assert!(!matches(
            "audit_findings_*.csv",
            "audit_findings_20210930.csv.part"
        ));
        assert!(!matches("audit_findings_*.csv", "x_audit_findings_1.csv"));
        assert!(matches("kaoping_*Q*.xlsx", "kaoping_2021Q2.xlsx"));
        assert!(matches("a", "a"));
        assert!(!matches("a", "ab"));
    }

    #[test]
    fn gbk_csv_rows_stream_and_bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = "问题编号,被审计单位\nSJ-1,市教育局（本级）\nSJ-2\nSJ-3,\"市 卫健委\"\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        std::fs::write(dir.path().join("a_1.csv"), &gbk).unwrap();
        std::fs::write(dir.path().join("a_2.csv.part"), b"x").unwrap();
        let t = Transport::File {
            pattern: "a_*.csv".into(),
            take: Take::Newest,
            format: FileFormat::Csv,
            encoding: Some("gbk".into()),
            sheet: None,
            max_file_bytes: 1 << 20,
            max_inflated_bytes: 1 << 24,
        };
        let src = FileSource::new(&t, Some(dir.path())).unwrap();
        let files = src.select().unwrap();
        assert_eq!(files, vec![dir.path().join("a_1.csv")]);
        let (tx, mut rx) = mpsc::channel(4);
        src.read(&files[0], 2, &tx);
        drop(tx);
        let mut rows = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            rows.extend(chunk.unwrap());
        }
        assert_eq!(rows.len(), 3);
        let SourceRow::Ok(first) = &rows[0] else {
            panic!()
        };
        assert_eq!(first["被审计单位"], "市教育局（本级）");
        let SourceRow::Bad { reason, .. } = &rows[1] else {
            panic!()
        };
        assert_eq!(reason, "line 3: 1 cells where the header has 2");
    }

    #[test]
    fn csv_byte_order_marks_name_the_encoding() {
        use super::props::{read_all, source_with};
        // Found by `props::csv_rows_are_rows_under_the_header_or_named_bad_ones`:
        // a BOM was ignored when the manifest named an encoding, so a GBK
        // source re-saved as UTF-8 with a BOM landed as garbled text.
        let text = "\u{feff}问题编号,被审计单位\r\nSJ-1,市教育局（本级）\r\n";
        let (_dir, src, path) = source_with(FileFormat::Csv, Some("gbk"), "a.csv", text.as_bytes());
        let (rows, error) = read_all(&src, &path, 2).unwrap();
        assert_eq!(error, None);
        let expected = serde_json::json!({"问题编号": "SJ-1", "被审计单位": "市教育局（本级）"});
        assert_eq!(
            rows,
            vec![SourceRow::Ok(expected.as_object().unwrap().clone())]
        );
        // The exact input: a UTF-16LE BOM and one line break is an empty file,
        // not a header of two replacement characters over a row of NUL.
        let (_dir, src, path) =
            source_with(FileFormat::Csv, Some("gbk"), "b.csv", b"\xff\xfe\n\x00");
        assert_eq!(read_all(&src, &path, 1).unwrap(), (vec![], None));
    }

    #[test]
    fn a_parser_that_panics_on_a_workbook_makes_a_file_error() {
        use super::props::{XCell, read_all, rezip, source_with, workbook};
        // Found by `props::damaged_workbooks_are_file_errors_or_rows_never_panics`:
        // calamine 0.38 multiplies a row number past u32 without checking.
        let grid = [
            ((0, 0), XCell::Text("单位编码".into())),
            ((1, 0), XCell::Number(370101.0)),
        ];
        let bytes = rezip(
            workbook(&grid.into_iter().collect(), "部门考评"),
            |parts| {
                for (name, xml) in parts
                    .iter_mut()
                    .filter(|(n, _)| n.contains("worksheets/sheet2"))
                {
                    let text = String::from_utf8(std::mem::take(xml)).unwrap();
                    assert!(text.contains("<row r=\"2\""), "{name}");
                    *xml = text
                        .replace("<row r=\"2\"", "<row r=\"99999999999\"")
                        .into_bytes();
                }
            },
        );
        let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
        let (rows, error) = read_all(&src, &path, 1).unwrap();
        if cfg!(debug_assertions) {
            // Release builds wrap instead of panicking.
            assert!(rows.is_empty());
            assert!(
                error
                    .unwrap()
                    .contains("k.xlsx: the file is malformed (attempt to multiply with overflow)")
            );
        }
    }

    /// The error of the file at `path`, as the run reports it.
    fn refused(path: &Path, why: &str) -> Option<String> {
        Some(format!("{}: {why}", path.display()))
    }

    #[test]
    fn a_column_named_twice_refuses_the_csv_whole() {
        use super::props::{read_all, source_with};
        // The second 问题编号 (spaces trimmed, as every header is) used to
        // win: SJ-1 landed as SJ-9.
        let text = "问题编号,被审计单位, 问题编号 \r\nSJ-1,市教育局（本级）,SJ-9\r\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        let (_dir, src, path) = source_with(FileFormat::Csv, Some("gbk"), "a.csv", &gbk);
        let (rows, error) = read_all(&src, &path, 2).unwrap();
        assert_eq!(rows, vec![]);
        assert_eq!(
            error,
            refused(
                &path,
                "column \"问题编号\" appears twice in the header (columns 1 and 3); \
                 the file is refused whole"
            )
        );
        // Blank names name no column: a trailing comma may repeat.
        let (_dir, src, path) = source_with(FileFormat::Csv, None, "b.csv", b"a,,b,\n1,,2,\n");
        let (rows, error) = read_all(&src, &path, 2).unwrap();
        assert_eq!(error, None);
        let expected = serde_json::json!({"a": "1", "": "", "b": "2"});
        assert_eq!(
            rows,
            vec![SourceRow::Ok(expected.as_object().unwrap().clone())]
        );
    }

    #[test]
    fn a_column_named_twice_refuses_the_workbook_whole() {
        use super::props::{XCell, read_all, source_with, workbook};
        let text = |s: &str| XCell::Text(s.into());
        let grid = [
            ((0, 0), text("问题编号")),
            ((0, 1), text("被审计单位")),
            ((0, 2), text(" 问题编号")),
            ((1, 0), text("SJ-1")),
            ((1, 2), text("SJ-9")),
        ];
        let bytes = workbook(&grid.into_iter().collect(), "部门考评");
        let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
        let (rows, error) = read_all(&src, &path, 1).unwrap();
        assert_eq!(rows, vec![]);
        assert_eq!(
            error,
            refused(
                &path,
                "column \"问题编号\" appears twice in the header (columns A and C); \
                 the file is refused whole"
            )
        );
        // A header alone would be an empty snapshot, deleting everything; a
        // number and a text naming one column are the same name.
        let grid = [((0, 0), XCell::Number(2021.0)), ((0, 27), text("2021"))];
        let bytes = workbook(&grid.into_iter().collect(), "部门考评");
        let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
        assert_eq!(
            read_all(&src, &path, 1).unwrap(),
            (
                vec![],
                refused(
                    &path,
                    "column \"2021\" appears twice in the header (columns A and AB); \
                     the file is refused whole"
                )
            )
        );
    }

    #[test]
    fn a_cell_given_twice_or_rows_out_of_order_refuse_the_workbook() {
        use super::props::{XCell, read_all, rezip, source_with, workbook};
        let grid = [
            ((0, 0), XCell::Text("单位编码".into())),
            ((0, 1), XCell::Text("等级".into())),
            ((1, 0), XCell::Number(370101.0)),
            ((1, 1), XCell::Text("优".into())),
            ((2, 0), XCell::Number(370102.0)),
        ];
        let valid = workbook(&grid.into_iter().collect(), "部门考评");
        /// A change to the sheet's XML.
        type Edit = fn(String) -> String;
        let edited = |edit: Edit| {
            rezip(valid.clone(), |parts| {
                for (_, xml) in parts.iter_mut().filter(|(n, _)| n.ends_with("sheet2.xml")) {
                    let text = String::from_utf8(std::mem::take(xml)).unwrap();
                    *xml = edit(text).into_bytes();
                }
            })
        };
        let cases: [(Edit, &str); 2] = [
            // Row 2's code given again after its grade: the last one won.
            (
                |x| {
                    let again = "<c r=\"A2\"><v>370199</v></c></row><row r=\"3\"";
                    let edited = x.replacen("</row><row r=\"3\"", again, 1);
                    assert_ne!(edited, x);
                    edited
                },
                "cell A2 appears twice; the file is refused whole",
            ),
            // Row 3 before row 2: read as it came, row 2 would have been
            // two rows, each with part of its cells.
            (
                |x| {
                    let row2 = "<row r=\"2\" spans=\"1:2\"><c r=\"A2\"><v>370101</v></c>\
                                <c r=\"B2\" t=\"s\"><v>2</v></c></row>";
                    let row3 = "<row r=\"3\" spans=\"1:2\"><c r=\"A3\"><v>370102</v></c></row>";
                    assert!(x.contains(&format!("{row2}{row3}")), "{x}");
                    x.replace(&format!("{row2}{row3}"), &format!("{row3}{row2}"))
                },
                "row 2 comes after row 3; the file is refused whole",
            ),
        ];
        for (edit, why) in cases {
            let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &edited(edit));
            let (_, error) = read_all(&src, &path, 10).unwrap();
            assert_eq!(error, refused(&path, why));
        }
    }

    #[test]
    fn a_json_key_given_twice_refuses_the_file() {
        use super::props::{read_all, source_with};
        let text = "[{\"问题编号\": \"SJ-1\", \"问题编号\": \"SJ-9\"}]";
        let (_dir, src, path) = source_with(FileFormat::Json, None, "a.json", text.as_bytes());
        assert_eq!(
            read_all(&src, &path, 2).unwrap(),
            (
                vec![],
                refused(
                    &path,
                    "key \"问题编号\" appears twice in one object at line 1 column 41; \
                     the file is refused whole"
                )
            )
        );
        // At any depth, on any line; the rows before it are sent, and the
        // run that receives the error keeps none of them.
        let text = "{\"a\": 1}\n{\"b\": {\"c\": 1, \"c\": 2}}\n";
        let (_dir, src, path) = source_with(FileFormat::Json, None, "b.json", text.as_bytes());
        let (rows, error) = read_all(&src, &path, 1).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            error,
            refused(
                &path,
                "key \"c\" appears twice in one object at line 2 column 19; \
                 the file is refused whole"
            )
        );
    }

    #[test]
    fn a_shared_strings_bomb_is_refused_before_it_inflates() {
        use super::bombs::{MIB, bomb_workbook, peak_rss};
        use super::props::{read_all, source_limited};
        // The report's workbook: shared strings that say they inflate to
        // 4 GiB, which used to abort the process after a minute at 4.2 GB.
        // The default limit refuses it from its headers alone (this one
        // holds far less than it says, so that no build of this test can
        // inflate gigabytes).
        let (bytes, declared, bomb) = bomb_workbook(MIB, Some(4 << 30));
        let limit = 256 * MIB;
        let (_dir, src, path) =
            source_limited(FileFormat::Xlsx, None, "k.xlsx", &bytes, (1 << 30, limit));
        let refusal = |declared, bomb, limit| {
            refused(
                &path,
                &format!(
                    "its parts declare {declared} bytes uncompressed \
                     (xl/sharedStrings.xml: {bomb}), over the limit of {limit} \
                     (max_inflated_bytes); the file is refused whole"
                ),
            )
        };
        assert_eq!(bomb, 4 << 30);
        assert_eq!(
            read_all(&src, &path, 10).unwrap(),
            (vec![], refusal(declared, bomb, limit))
        );

        // One that does inflate to 64 MiB from 400 KB, under a test's limit
        // of 1 MiB: refused before a byte is inflated, the process's peak
        // memory no higher than before.
        let (bytes, declared, bomb) = bomb_workbook(64 * MIB, None);
        assert!(bytes.len() < 512 << 10, "{}", bytes.len());
        let (_dir, src, path) =
            source_limited(FileFormat::Xlsx, None, "k.xlsx", &bytes, (1 << 20, MIB));
        let refusal = |declared, bomb, limit| {
            refused(
                &path,
                &format!(
                    "its parts declare {declared} bytes uncompressed \
                     (xl/sharedStrings.xml: {bomb}), over the limit of {limit} \
                     (max_inflated_bytes); the file is refused whole"
                ),
            )
        };
        let before = peak_rss();
        assert_eq!(
            read_all(&src, &path, 10).unwrap(),
            (vec![], refusal(declared, bomb, MIB))
        );
        let grown = peak_rss() - before;
        assert!(grown < 32 << 20, "the peak grew by {grown} bytes");
    }

    #[test]
    fn a_bomb_whose_headers_understate_it_is_stopped_while_inflating() {
        use super::bombs::{MIB, bomb_workbook, peak_rss};
        use super::props::{read_all, source_limited};
        // The same 64 MiB, its headers saying 1,000 bytes: the declared
        // sizes pass, and inflating is what must stop it.
        let (bytes, declared, bomb) = bomb_workbook(64 * MIB, Some(1000));
        assert_eq!(bomb, 1000);
        assert!(declared < 16 << 10);
        let (_dir, src, path) =
            source_limited(FileFormat::Xlsx, None, "k.xlsx", &bytes, (1 << 20, MIB));
        let before = peak_rss();
        let (rows, error) = read_all(&src, &path, 10).unwrap();
        assert_eq!(rows, vec![]);
        // The zip crate (9.4) stops a part at the size it declares, before
        // the counting sink under the limit would (see the next test).
        assert_eq!(
            error,
            refused(
                &path,
                "xl/sharedStrings.xml cannot be inflated (File is larger than its declared \
                 uncompressed size); the file is refused whole"
            )
        );
        let grown = peak_rss() - before;
        assert!(grown < 32 << 20, "the peak grew by {grown} bytes");
    }

    #[test]
    fn inflation_is_counted_not_taken_on_trust() {
        // Whatever a part declares, reading it stops one byte past the limit.
        let mut endless = std::io::repeat(b'a');
        assert_eq!(inflate_within(&mut endless, 1 << 20, |_| {}).unwrap(), None);
        assert_eq!(
            inflate_within(&mut &b"abc"[..], 3, |_| {}).unwrap(),
            Some(3)
        );
        assert_eq!(inflate_within(&mut &b"abc"[..], 2, |_| {}).unwrap(), None);
        // What looks at the head of a part is counted too.
        let mut part = std::io::Read::chain(&b"<sst uniqueCount=\"7\">"[..], std::io::repeat(b' '));
        let mut claimed = None;
        let inflated = inflate_within(&mut part, 1 << 16, |head| {
            claimed = claimed_strings(head);
        });
        assert_eq!((inflated.unwrap(), claimed), (None, Some(7)));
    }

    #[test]
    fn shared_strings_that_claim_more_than_their_bytes_hold_are_refused() {
        use super::props::{XCell, read_all, rezip, source_with, workbook};
        // calamine reserves a String for each string the part claims: this
        // 6 KB workbook aborted the process asking for 96 GiB.
        let grid = [
            ((0, 0), XCell::Text("单位编码".into())),
            ((1, 0), XCell::Text("x".into())),
        ];
        let mut part_bytes = 0;
        let bytes = rezip(
            workbook(&grid.into_iter().collect(), "部门考评"),
            |parts| {
                for (_, xml) in parts
                    .iter_mut()
                    .filter(|(n, _)| n.contains("sharedStrings"))
                {
                    let text = String::from_utf8(std::mem::take(xml)).unwrap();
                    *xml = text
                        .replacen("uniqueCount=\"2\"", "uniqueCount=\"4294967295\"", 1)
                        .into_bytes();
                    part_bytes = xml.len();
                }
            },
        );
        assert!(part_bytes > 0);
        let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
        assert_eq!(
            read_all(&src, &path, 1).unwrap(),
            (
                vec![],
                refused(
                    &path,
                    &format!(
                        "xl/sharedStrings.xml claims 4294967295 shared strings, more than \
                         its {part_bytes} bytes can hold; the file is refused whole"
                    )
                )
            )
        );
        // Any spelling of the count calamine might read is read here too.
        assert_eq!(
            largest_count(b"count=\"9\" uniqueCount = '0012' x:uniqueCount=\"99\""),
            99
        );
        assert_eq!(largest_count(b"count=\"123456\""), 0);
        assert_eq!(
            largest_count(b"uniqueCount=\"99999999999999999999999999999999999999999\""),
            u128::MAX
        );
    }

    #[test]
    fn two_parts_of_one_name_refuse_the_workbook() {
        use super::bombs::same_named;
        use super::props::{XCell, read_all, rezip, source_with, workbook};
        // calamine looks parts up by name without letter case, so one of
        // two such parts would be read and the other never.
        let grid = [((0, 0), XCell::Text("单位编码".into()))];
        let valid = workbook(&grid.into_iter().collect(), "部门考评");
        let bytes = rezip(valid.clone(), |parts| {
            let other = parts
                .iter_mut()
                .find(|(n, _)| n == "docProps/app.xml")
                .unwrap();
            other.0 = "XL/SharedStrings.xml".into();
        });
        let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
        assert_eq!(
            read_all(&src, &path, 1).unwrap().1,
            refused(
                &path,
                "two parts are named \"XL/SharedStrings.xml\" (letter case and slashes \
                 aside); the file is refused whole"
            )
        );
        let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &same_named(valid));
        assert_eq!(
            read_all(&src, &path, 1).unwrap().1,
            refused(&path, "two parts have one name; the file is refused whole")
        );
    }

    #[test]
    fn a_workbook_is_read_up_to_its_limit_exactly() {
        use super::props::{XCell, read_all, source_limited, workbook};
        let mut grid: BTreeMap<(u32, u16), XCell> = BTreeMap::new();
        grid.insert((0, 0), XCell::Text("单位名称".into()));
        for r in 1..200 {
            grid.insert(
                (r, 0),
                XCell::Text(format!("单位{r:04}{}", "名".repeat(40))),
            );
        }
        let bytes = workbook(&grid, "部门考评");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
        let declared: u64 = (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().size())
            .sum();
        let strings = archive.by_name("xl/sharedStrings.xml").unwrap().size();
        let read = |limit| {
            let (_dir, src, path) =
                source_limited(FileFormat::Xlsx, None, "k.xlsx", &bytes, (1 << 20, limit));
            let (rows, error) = read_all(&src, &path, 50).unwrap();
            (
                rows.len(),
                error.map(|e| e.replace(&format!("{}: ", path.display()), "")),
            )
        };
        assert_eq!(read(declared), (199, None));
        assert_eq!(
            read(declared - 1),
            (
                0,
                Some(format!(
                    "its parts declare {declared} bytes uncompressed (xl/sharedStrings.xml: \
                     {strings}), over the limit of {} (max_inflated_bytes); the file is \
                     refused whole",
                    declared - 1
                ))
            )
        );
    }

    #[test]
    fn formatted_blank_cells_above_the_header_are_nothing() {
        // Found by `props::valid_workbooks_read_as_written`: a formatted blank
        // cell made its row the header, so the real header was read as data
        // and every row came out empty (and was quarantined); bordered blank
        // rows below the data each came out as an empty row.
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.set_name("部门考评").unwrap();
        let border = rust_xlsxwriter::Format::new().set_border(rust_xlsxwriter::FormatBorder::Thin);
        sheet.write_blank(0, 0, &border).unwrap();
        sheet.write_blank(0, 1, &border).unwrap();
        sheet.write_string(1, 0, "单位编码").unwrap();
        sheet.write_string(1, 1, "等级").unwrap();
        sheet.write_number(2, 0, 370101).unwrap();
        sheet.write_blank(2, 1, &border).unwrap();
        sheet.write_blank(3, 1, &border).unwrap();
        sheet.write_number(4, 0, 370102).unwrap();
        sheet.write_string(4, 1, "优").unwrap();
        let bytes = workbook.save_to_buffer().unwrap();
        let (_dir, src, path) = super::props::source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
        let (rows, error) = super::props::read_all(&src, &path, 10).unwrap();
        assert_eq!(error, None);
        let row = |v: Value| SourceRow::Ok(v.as_object().unwrap().clone());
        assert_eq!(
            rows,
            vec![
                row(serde_json::json!({"单位编码": 370101})),
                row(serde_json::json!({"单位编码": 370102, "等级": "优"})),
            ],
            "the blank row 4 is no row at all"
        );
    }
}

#[cfg(test)]
mod props {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::{Cursor, Read, Write};

    use proptest::prelude::*;
    use rust_xlsxwriter::{Format, Workbook};

    use super::*;
    use crate::testing::config;

    const SHEET: &str = "部门考评";
    const AUDIT_HEADER: &str =
        "问题编号,被审计单位,项目编码,问题类型,涉及金额,整改状态,整改期限,发现日期";

    /// A source of `format` over a fresh directory holding `bytes` as `name`.
    pub(super) fn source_with(
        format: FileFormat,
        encoding: Option<&str>,
        name: &str,
        bytes: &[u8],
    ) -> (tempfile::TempDir, FileSource, PathBuf) {
        source_limited(format, encoding, name, bytes, (1 << 20, 1 << 24))
    }

    /// `source_with` under (`max_file_bytes`, `max_inflated_bytes`).
    pub(super) fn source_limited(
        format: FileFormat,
        encoding: Option<&str>,
        name: &str,
        bytes: &[u8],
        (max_file_bytes, max_inflated_bytes): (u64, u64),
    ) -> (tempfile::TempDir, FileSource, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let t = Transport::File {
            pattern: "*".into(),
            take: Take::Every,
            format,
            encoding: encoding.map(str::to_owned),
            sheet: Some(SHEET.into()),
            max_file_bytes,
            max_inflated_bytes,
        };
        let src = FileSource::new(&t, Some(dir.path())).unwrap();
        (dir, src, path)
    }

    /// Everything `read` sends for one file, on a reader thread as in a run,
    /// checking the channel's discipline: chunks of 1..=`chunk` rows, at most
    /// one error, a file error, and nothing after it.
    pub(super) fn read_all(
        src: &FileSource,
        path: &Path,
        chunk: usize,
    ) -> Result<(Vec<SourceRow>, Option<String>), TestCaseError> {
        let (tx, mut rx) = mpsc::channel(2);
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || src.read(path, chunk, &tx));
            let mut rows = Vec::new();
            let mut error = None;
            while let Some(message) = rx.blocking_recv() {
                prop_assert!(error.is_none(), "a message after the error {:?}", error);
                match message {
                    Ok(batch) => {
                        prop_assert!(!batch.is_empty() && batch.len() <= chunk);
                        rows.extend(batch);
                    }
                    Err(FetchError::File(e)) => error = Some(e),
                    Err(e) => return Err(TestCaseError::fail(format!("not a file error: {e}"))),
                }
            }
            prop_assert!(reader.join().is_ok(), "the reader panicked");
            Ok((rows, error))
        })
    }

    /// What a CSV file is made of.
    #[derive(Debug, Clone)]
    enum CsvFile {
        /// Any bytes at all.
        Bytes(Vec<u8>),
        /// Text in the file's encoding, possibly cut (in the middle of a
        /// multi-byte sequence, too) and with stray bytes inserted.
        Text {
            text: String,
            cut: Option<usize>,
            noise: Vec<(usize, u8)>,
        },
        /// The audit header, then anything.
        HeaderThen { crlf: bool, rest: Vec<u8> },
        /// The audit header with one of its names again (spaced or not)
        /// at the end, then anything.
        NameTwice {
            name: usize,
            spaced: bool,
            rest: Vec<u8>,
        },
    }

    fn csv_text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            6 => proptest::sample::select(vec!['问', '题', '市', '局', '（', '）', 'a', '1', ' ', '€']),
            3 => proptest::sample::select(vec![',', '"', '\r', '\n']),
            1 => any::<char>(),
        ];
        prop_oneof![
            proptest::collection::vec(c, 0..160).prop_map(|v| v.into_iter().collect()),
            proptest::collection::vec("[^,\"\r\n]{0,6}|\"[^\"]{0,6}\"", 1..24).prop_map(|cells| {
                cells
                    .chunks(3)
                    .map(|r| r.join(","))
                    .collect::<Vec<_>>()
                    .join("\r\n")
            }),
        ]
    }

    fn csv_file() -> impl Strategy<Value = CsvFile> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512).prop_map(CsvFile::Bytes),
            (
                csv_text(),
                proptest::option::of(any::<usize>()),
                proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            )
                .prop_map(|(text, cut, noise)| CsvFile::Text { text, cut, noise }),
            (
                any::<bool>(),
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..256),
                    csv_text().prop_map(String::into_bytes),
                ]
            )
                .prop_map(|(crlf, rest)| CsvFile::HeaderThen { crlf, rest }),
            (
                any::<usize>(),
                any::<bool>(),
                csv_text().prop_map(String::into_bytes)
            )
                .prop_map(|(name, spaced, rest)| CsvFile::NameTwice {
                    name,
                    spaced,
                    rest
                }),
        ]
    }

    fn encode(encoding: &'static encoding_rs::Encoding, text: &str) -> Vec<u8> {
        if encoding == encoding_rs::UTF_16LE {
            // encoding_rs has no UTF-16 encoder.
            text.encode_utf16().flat_map(u16::to_le_bytes).collect()
        } else {
            encoding.encode(text).0.into_owned()
        }
    }

    fn csv_bytes(file: &CsvFile, encoding: &'static encoding_rs::Encoding) -> Vec<u8> {
        match file {
            CsvFile::Bytes(b) => b.clone(),
            CsvFile::Text { text, cut, noise } => {
                let mut b = encode(encoding, text);
                if let Some(cut) = cut {
                    b.truncate(cut % (b.len() + 1));
                }
                for (at, byte) in noise {
                    b.insert(at % (b.len() + 1), *byte);
                }
                b
            }
            CsvFile::HeaderThen { crlf, rest } => {
                let mut b = encode(encoding, AUDIT_HEADER);
                b.extend(encode(encoding, if *crlf { "\r\n" } else { "\n" }));
                b.extend(rest);
                b
            }
            CsvFile::NameTwice { name, spaced, rest } => {
                let names: Vec<&str> = AUDIT_HEADER.split(',').collect();
                let again = names[name % names.len()];
                let pad = if *spaced { " " } else { "" };
                let header = format!("{AUDIT_HEADER},{pad}{again}{pad}\r\n");
                let mut b = encode(encoding, &header);
                b.extend(encode(encoding, &String::from_utf8_lossy(rest)));
                b
            }
        }
    }

    /// The header as the whole file decoded at once says it is: its names,
    /// or the first non-blank name that comes twice.
    fn header_of(text: &str) -> Option<Result<BTreeSet<String>, String>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = reader.headers().ok()?;
        let mut names = BTreeSet::new();
        for name in headers
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}'))
        {
            if !names.insert(name.to_owned()) && !name.is_empty() {
                return Some(Err(name.to_owned()));
            }
        }
        Some(Ok(names))
    }

    /// Whether `error` is the refusal of a header naming `name` twice.
    fn names_twice(error: Option<&str>, name: &str) -> bool {
        error.is_some_and(|e| {
            e.contains(&format!("column {name:?} appears twice in the header"))
                && e.ends_with("; the file is refused whole")
        })
    }

    /// A row with the encoding's name taken out of its reason.
    fn without_encoding(row: SourceRow, encoding: &'static encoding_rs::Encoding) -> SourceRow {
        match row {
            SourceRow::Bad { reason, raw } => SourceRow::Bad {
                reason: reason.replace(&format!("not valid {}", encoding.name()), "not valid …"),
                raw,
            },
            ok => ok,
        }
    }

    /// A cell written into a workbook.
    #[derive(Debug, Clone)]
    pub(super) enum XCell {
        Number(f64),
        Text(String),
        Bool(bool),
        /// Formatted but empty: nothing to read.
        Blank,
    }

    fn xcell(finite: bool) -> impl Strategy<Value = XCell> {
        let non_finite = if finite {
            Just(0.25).boxed()
        } else {
            proptest::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]).boxed()
        };
        let number = prop_oneof![
            (-1_000_000i64..1_000_000).prop_map(|n| n as f64),
            prop_oneof![
                Just(47.5),
                Just(2021.0),
                Just(-0.0),
                Just(9.0e15),
                Just(8_999_999_999_999_999.0),
                Just(1e300),
                Just(0.1)
            ],
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            non_finite,
        ];
        prop_oneof![
            3 => number.prop_map(XCell::Number),
            4 => prop_oneof![
                "[ ]?[单位编码名称年度季考评得分等级优良]{1,4}[ ]?",
                "[0-9]{6}",
                any::<String>().prop_map(|s| s.chars().take(40).collect()),
            ]
            .prop_map(XCell::Text),
            1 => any::<bool>().prop_map(XCell::Bool),
            1 => Just(XCell::Blank),
        ]
    }

    /// Cells by (row, column); the last one written at a place wins.
    fn grid(finite: bool) -> impl Strategy<Value = BTreeMap<(u32, u16), XCell>> {
        proptest::collection::vec(((0u32..8), (0u16..6), xcell(finite)), 0..32)
            .prop_map(|cells| cells.into_iter().map(|(r, c, v)| ((r, c), v)).collect())
    }

    pub(super) fn workbook(grid: &BTreeMap<(u32, u16), XCell>, sheet: &str) -> Vec<u8> {
        let mut workbook = Workbook::new();
        workbook.add_worksheet().set_name("封面").unwrap();
        let ws = workbook.add_worksheet();
        ws.set_name(sheet).unwrap();
        let bold = Format::new().set_bold();
        for (&(r, c), cell) in grid {
            match cell {
                XCell::Number(n) => ws.write_number(r, c, *n).map(|_| ()),
                XCell::Text(t) => ws.write_string(r, c, t).map(|_| ()),
                XCell::Bool(b) => ws.write_boolean(r, c, *b).map(|_| ()),
                XCell::Blank => ws.write_blank(r, c, &bold).map(|_| ()),
            }
            .unwrap();
        }
        workbook.save_to_buffer().unwrap()
    }

    /// A number as the reader gives it: whole ones as integers.
    fn number(n: f64) -> Option<Value> {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            Some(Value::from(n as i64))
        } else {
            Number::from_f64(n).map(Value::Number)
        }
    }

    /// The rows a person reading the sheet would expect: the first row with
    /// anything in it names the columns; each later row with anything in it
    /// is one row of the cells under a named column. A name given to two
    /// columns (the first found left to right) refuses the sheet.
    fn expected_rows(grid: &BTreeMap<(u32, u16), XCell>) -> Result<Vec<SourceRow>, String> {
        let value = |cell: &XCell| match cell {
            XCell::Number(n) => number(*n),
            // An empty string is written as an empty cell.
            XCell::Text(t) if t.is_empty() => None,
            XCell::Text(t) => Some(Value::String(t.clone())),
            XCell::Bool(b) => Some(Value::Bool(*b)),
            XCell::Blank => None,
        };
        let mut rows: BTreeMap<u32, Vec<(u16, Value)>> = BTreeMap::new();
        for (&(r, c), cell) in grid {
            if let Some(v) = value(cell) {
                rows.entry(r).or_default().push((c, v));
            }
        }
        let mut rows = rows.into_values();
        let Some(header) = rows.next() else {
            return Ok(Vec::new());
        };
        let names: BTreeMap<u16, String> = header
            .into_iter()
            .map(|(c, v)| match v {
                Value::String(s) => (c, s.trim().to_owned()),
                other => (c, other.to_string()),
            })
            .collect();
        let mut seen = BTreeSet::new();
        for name in names.values().filter(|n| !n.is_empty()) {
            if !seen.insert(name) {
                return Err(name.clone());
            }
        }
        Ok(rows
            .map(|cells| {
                let mut row = Map::new();
                for (c, v) in cells {
                    if let Some(name) = names.get(&c) {
                        row.insert(name.clone(), v);
                    }
                }
                SourceRow::Ok(row)
            })
            .collect())
    }

    /// One change to the bytes of an XML part of a workbook.
    #[derive(Debug, Clone)]
    enum XmlEdit {
        Replace(usize, u8),
        Insert(usize, &'static str),
        Delete(usize, usize),
    }

    fn xml_edit() -> impl Strategy<Value = XmlEdit> {
        let byte = proptest::sample::select(b"09AZ<>/\"=&; xrtsv-.\xff".to_vec());
        let snippet = proptest::sample::select(vec![
            "99999999999",
            "4294967296",
            "XFD1048577",
            "AAAAAAAAA1",
            "r=\"A0\"",
            "<c r=\"B2\">",
            "</c>",
            "<row>",
            "</row>",
            "<v></v>",
            "<v>1e309</v>",
            "<v>-</v>",
            "<v>NaN</v>",
            " t=\"s\"",
            " t=\"b\"",
            " t=\"e\"",
            " t=\"d\"",
            " t=\"inlineStr\"",
            " s=\"99\"",
            "<is><t>x</t></is>",
            "&#0;",
            "&#xD800;",
            "&bogus;",
            "<!--",
            "<![CDATA[",
            "_x0000_",
            "<sheetData/>",
            "</sheetData>",
            "<si><t>",
            "count=\"-1\"",
            "uniqueCount=\"4294967295\"",
        ]);
        prop_oneof![
            (any::<usize>(), byte).prop_map(|(at, b)| XmlEdit::Replace(at, b)),
            (any::<usize>(), snippet).prop_map(|(at, s)| XmlEdit::Insert(at, s)),
            (any::<usize>(), 1usize..40).prop_map(|(at, n)| XmlEdit::Delete(at, n)),
        ]
    }

    /// How a valid workbook is damaged.
    #[derive(Debug, Clone)]
    enum Damage {
        Truncate(usize),
        Flip(Vec<(usize, u8)>),
        /// Edits to the XML part with this index, re-zipped intact.
        Xml(usize, Vec<XmlEdit>),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            any::<usize>().prop_map(Damage::Truncate),
            proptest::collection::vec((any::<usize>(), 1u8..=255), 1..6).prop_map(Damage::Flip),
            (any::<usize>(), proptest::collection::vec(xml_edit(), 1..5))
                .prop_map(|(part, edits)| Damage::Xml(part, edits)),
        ]
    }

    fn damaged(bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
        match damage {
            Damage::Truncate(at) => bytes[..at % (bytes.len() + 1)].to_vec(),
            Damage::Flip(flips) => {
                let mut b = bytes;
                for (at, x) in flips {
                    let n = b.len();
                    b[at % n] ^= x;
                }
                b
            }
            Damage::Xml(part, edits) => rezip(bytes, |parts| {
                // The worksheets and shared strings twice as often as the rest.
                let mut targets: Vec<usize> = (0..parts.len()).collect();
                targets.extend((0..parts.len()).filter(|&i| {
                    parts[i].0.contains("worksheets/") || parts[i].0.contains("sharedStrings")
                }));
                let target = targets[part % targets.len()];
                let xml = &mut parts[target].1;
                for edit in edits {
                    let n = xml.len();
                    match edit {
                        XmlEdit::Replace(at, b) if n > 0 => xml[at % n] = *b,
                        XmlEdit::Replace(..) => {}
                        XmlEdit::Insert(at, s) => {
                            let at = at % (n + 1);
                            xml.splice(at..at, s.bytes());
                        }
                        XmlEdit::Delete(at, len) => {
                            let at = at % (n + 1);
                            xml.drain(at..(at + len).min(n));
                        }
                    }
                }
            }),
        }
    }

    /// The workbook with its parts (name, bytes) changed by `edit`, zipped
    /// again without compression.
    pub(super) fn rezip(bytes: Vec<u8>, edit: impl FnOnce(&mut [(String, Vec<u8>)])) -> Vec<u8> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut parts = Vec::new();
        for i in 0..archive.len() {
            let mut f = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            f.read_to_end(&mut content).unwrap();
            parts.push((f.name().unwrap().into_owned(), content));
        }
        edit(&mut parts);
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, content) in parts {
            out.start_file(name, stored).unwrap();
            out.write_all(&content).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    proptest! {
        #![proptest_config(config(128))]

        #[test]
        fn csv_rows_are_rows_under_the_header_or_named_bad_ones(
            file in csv_file(),
            label in proptest::sample::select(vec!["gbk", "gbk", "utf-8", "gb18030", "utf-16le", "big5"]),
            chunk in 1usize..5,
        ) {
            let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
            let bytes = csv_bytes(&file, encoding);
            let (_dir, src, path) = source_with(FileFormat::Csv, Some(label), "a.csv", &bytes);
            let (rows, error) = read_all(&src, &path, chunk)?;

            // The whole file decoded at once, BOM sniffing included.
            let (text, _, _) = encoding.decode(&bytes);
            let header = match header_of(&text) {
                Some(Err(name)) => {
                    prop_assert!(rows.is_empty());
                    prop_assert!(names_twice(error.as_deref(), &name), "{:?} {:?}", error, name);
                    return Ok(());
                }
                header => header.map(Result::unwrap_or_default),
            };
            prop_assert_eq!(error.is_some(), header.is_none(), "{:?}", error);
            let breaks = text.matches(['\n', '\r']).count();
            prop_assert!(rows.len() <= breaks + 1, "{} rows from {} line breaks", rows.len(), breaks);
            for row in &rows {
                match row {
                    SourceRow::Ok(r) => {
                        let keys: BTreeSet<String> = r.keys().cloned().collect();
                        prop_assert_eq!(Some(&keys), header.as_ref());
                        for v in r.values() {
                            prop_assert!(v.as_str().is_some_and(|s| !s.contains('\u{fffd}')), "{}", v);
                        }
                    }
                    SourceRow::Bad { reason, .. } => {
                        prop_assert!(reason.starts_with("line ") && reason.len() > 8, "{}", reason);
                    }
                }
            }

            // Decoding while streaming gives what decoding it whole gives.
            let (_dir2, utf8, path2) = source_with(FileFormat::Csv, None, "b.csv", text.as_bytes());
            let (whole, whole_error) = read_all(&utf8, &path2, 3)?;
            prop_assert_eq!(whole_error.is_some(), error.is_some());
            let strip = |rows: Vec<SourceRow>, e| rows.into_iter().map(|r| without_encoding(r, e)).collect::<Vec<_>>();
            prop_assert_eq!(strip(rows, encoding), strip(whole, encoding_rs::UTF_8));
        }

        #[test]
        fn json_files_never_panic(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..256),
                crate::testing::json_value().prop_map(|v| v.to_string().into_bytes()),
                proptest::collection::vec(crate::testing::json_value(), 0..4)
                    .prop_map(|vs| vs.iter().map(Value::to_string).collect::<Vec<_>>().join("\n").into_bytes()),
            ],
            cut in any::<usize>(),
        ) {
            let bytes = &bytes[..cut % (bytes.len() + 1)];
            let (_dir, src, path) = source_with(FileFormat::Json, None, "a.json", bytes);
            let (rows, _) = read_all(&src, &path, 2)?;
            for row in rows {
                if let SourceRow::Bad { reason, .. } = row {
                    prop_assert_eq!(reason, "not an object");
                }
            }
        }

        #[test]
        fn valid_workbooks_read_as_written(
            grid in grid(true),
            sheet in prop_oneof![9 => Just(SHEET), 1 => Just("Sheet1")],
            chunk in 1usize..4,
        ) {
            let bytes = workbook(&grid, sheet);
            let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
            let (rows, error) = read_all(&src, &path, chunk)?;
            if sheet == SHEET {
                match expected_rows(&grid) {
                    Ok(expected) => {
                        prop_assert_eq!(error, None);
                        prop_assert_eq!(rows, expected);
                    }
                    Err(name) => {
                        prop_assert!(rows.is_empty());
                        prop_assert!(names_twice(error.as_deref(), &name), "{:?} {:?}", error, name);
                    }
                }
            } else {
                prop_assert!(rows.is_empty());
                prop_assert!(error.is_some_and(|e| e.contains("sheet \"部门考评\"")));
            }
        }

        #[test]
        fn damaged_workbooks_are_file_errors_or_rows_never_panics(
            grid in grid(false),
            damage in damage(),
        ) {
            let bytes = damaged(workbook(&grid, SHEET), &damage);
            let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
            read_all(&src, &path, 2)?;
        }

        #[test]
        fn arbitrary_bytes_are_not_a_workbook(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..2048),
                proptest::collection::vec(any::<u8>(), 0..512)
                    .prop_map(|b| [b"PK\x03\x04".as_slice(), &b].concat()),
            ]
        ) {
            let (_dir, src, path) = source_with(FileFormat::Xlsx, None, "k.xlsx", &bytes);
            let (rows, error) = read_all(&src, &path, 2)?;
            prop_assert!(rows.is_empty());
            prop_assert!(error.is_some());
        }
    }
}

/// Workbooks that inflate far past what they weigh, written by hand so that
/// their headers say what a test wants them to.
#[cfg(test)]
mod bombs {
    use std::io::Read;

    pub(super) const MIB: u64 = 1 << 20;

    /// A workbook whose shared strings are one string of `run` letters,
    /// inflating to `run` and more bytes from a few MiB. The zip headers
    /// declare the part's true size, or `declared_part` when given. Returns
    /// the bytes, what all parts declare, and what the strings declare.
    pub(super) fn bomb_workbook(run: u64, declared_part: Option<u64>) -> (Vec<u8>, u64, u64) {
        use super::props::{XCell, workbook};
        let grid = [
            ((0, 0), XCell::Text("单位编码".into())),
            ((1, 0), XCell::Number(370101.0)),
        ];
        let valid = workbook(&grid.into_iter().collect(), "部门考评");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(valid)).unwrap();
        let prefix = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<sst \
                      xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
                      count=\"1\" uniqueCount=\"1\"><si><t>";
        let suffix = "</t></si></sst>";
        let mut parts = Vec::new();
        for i in 0..archive.len() {
            let mut f = archive.by_index(i).unwrap();
            let name = f.name().unwrap().into_owned();
            if name == "xl/sharedStrings.xml" {
                let size = prefix.len() as u64 + run + suffix.len() as u64;
                parts.push(Part {
                    name,
                    deflated: true,
                    data: deflate_run(prefix.as_bytes(), b'a', run, suffix.as_bytes()),
                    // Never read to its end: any checksum will do.
                    crc: 0,
                    size: declared_part.unwrap_or(size),
                });
            } else {
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                parts.push(Part {
                    name,
                    deflated: false,
                    crc: crc32(&data),
                    size: data.len() as u64,
                    data,
                });
            }
        }
        let declared = parts.iter().map(|p| p.size).sum();
        let strings = parts
            .iter()
            .find(|p| p.name.contains("sharedStrings"))
            .unwrap()
            .size;
        (zip_of(&parts), declared, strings)
    }

    /// The workbook with its shared strings stored twice under one name.
    pub(super) fn same_named(workbook: Vec<u8>) -> Vec<u8> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(workbook)).unwrap();
        let mut parts = Vec::new();
        for i in 0..archive.len() {
            let mut f = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            let name = f.name().unwrap().into_owned();
            let copies = if name == "xl/sharedStrings.xml" { 2 } else { 1 };
            for _ in 0..copies {
                parts.push(Part {
                    name: name.clone(),
                    deflated: false,
                    crc: crc32(&data),
                    size: data.len() as u64,
                    data: data.clone(),
                });
            }
        }
        zip_of(&parts)
    }

    /// The test's own process's peak resident memory, bytes.
    pub(super) fn peak_rss() -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: i64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    struct Part {
        name: String,
        deflated: bool,
        data: Vec<u8>,
        crc: u32,
        size: u64,
    }

    /// A zip archive of `parts`, zip64 where a size needs it.
    fn zip_of(parts: &[Part]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for p in parts {
            let offset = out.len() as u32;
            let name = p.name.as_bytes();
            let zip64 = p.size >= u64::from(u32::MAX);
            // The zip64 sizes: uncompressed, then compressed.
            let mut extra = Vec::new();
            if zip64 {
                extra.extend(1u16.to_le_bytes());
                extra.extend(16u16.to_le_bytes());
                extra.extend(p.size.to_le_bytes());
                extra.extend((p.data.len() as u64).to_le_bytes());
            }
            let (size, compressed) = if zip64 {
                (u32::MAX, u32::MAX)
            } else {
                (p.size as u32, p.data.len() as u32)
            };
            let version: u16 = if zip64 { 45 } else { 20 };
            let method: u16 = if p.deflated { 8 } else { 0 };
            let common = |v: &mut Vec<u8>| {
                v.extend(version.to_le_bytes());
                v.extend(0u16.to_le_bytes()); // flags
                v.extend(method.to_le_bytes());
                v.extend(0u16.to_le_bytes()); // time
                v.extend(0x21u16.to_le_bytes()); // 1980-01-01
                v.extend(p.crc.to_le_bytes());
                v.extend(compressed.to_le_bytes());
                v.extend(size.to_le_bytes());
                v.extend((name.len() as u16).to_le_bytes());
                v.extend((extra.len() as u16).to_le_bytes());
            };
            out.extend(0x0403_4b50u32.to_le_bytes());
            common(&mut out);
            out.extend(name);
            out.extend(&extra);
            out.extend(&p.data);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend(version.to_le_bytes()); // made by
            common(&mut central);
            central.extend(0u16.to_le_bytes()); // comment
            central.extend(0u16.to_le_bytes()); // disk
            central.extend(0u16.to_le_bytes()); // internal attributes
            central.extend(0u32.to_le_bytes()); // external attributes
            central.extend(offset.to_le_bytes());
            central.extend(name);
            central.extend(&extra);
        }
        let at = out.len() as u32;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]); // disks
        out.extend((parts.len() as u16).to_le_bytes());
        out.extend((parts.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(at.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Bits in deflate's order: values from their least significant bit.
    #[derive(Default)]
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }

    impl Bits {
        fn put(&mut self, value: u64, len: u32) {
            self.acc |= value << self.n;
            self.n += len;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }

        /// A Huffman code, which deflate packs from its most significant bit.
        fn code(&mut self, code: u32, len: u32) {
            self.put(u64::from(code.reverse_bits() >> (32 - len)), len);
        }

        /// A literal byte in the fixed code.
        fn literal(&mut self, b: u8) {
            match b {
                0..=143 => self.code(0x30 + u32::from(b), 8),
                _ => self.code(0x190 + u32::from(b) - 144, 9),
            }
        }
    }

    /// Raw deflate of `prefix`, `run` times `byte`, `suffix`: one block of
    /// the fixed code whose run is copies of 258 bytes at distance 1, 13
    /// bits each (deflate's best ratio, about 1:1000).
    fn deflate_run(prefix: &[u8], byte: u8, run: u64, suffix: &[u8]) -> Vec<u8> {
        assert!(run > 0);
        let mut bits = Bits::default();
        bits.put(1, 1); // the last block
        bits.put(1, 2); // of the fixed code
        prefix.iter().for_each(|&b| bits.literal(b));
        bits.literal(byte);
        // Length 258 is symbol 285 (8 bits, no extra); distance 1 is code 0
        // (5 bits).
        let copy = u64::from(0xC5u32.reverse_bits() >> 24);
        for _ in 0..(run - 1) / 258 {
            bits.put(copy, 13);
        }
        for _ in 0..(run - 1) % 258 {
            bits.literal(byte);
        }
        suffix.iter().for_each(|&b| bits.literal(b));
        bits.code(0, 7); // end of block
        if bits.n > 0 {
            bits.out.push(bits.acc as u8);
        }
        bits.out
    }

    #[test]
    fn a_hand_made_bomb_inflates_to_what_it_says() {
        // The bombs above are only as good as their deflate: a small one,
        // with honest headers and checksum, read back by the zip crate.
        let (prefix, suffix) = (b"<a>\xe5\x90\x8d".as_slice(), b"</a>".as_slice());
        let run = 258 * 3 + 100;
        let mut expected = prefix.to_vec();
        expected.extend(std::iter::repeat_n(b'a', run as usize));
        expected.extend(suffix);
        let bytes = zip_of(&[Part {
            name: "x.xml".into(),
            deflated: true,
            data: deflate_run(prefix, b'a', run, suffix),
            crc: crc32(&expected),
            size: expected.len() as u64,
        }]);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut inflated = Vec::new();
        archive
            .by_index(0)
            .unwrap()
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, expected);
    }
}
