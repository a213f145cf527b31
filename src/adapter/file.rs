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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Seek};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use calamine::{DataRef, Reader, Xlsx};
use serde_json::{Map, Number, Value};
use tokio::sync::mpsc;

use super::Unbuildable;
use super::json::UniqueKeys;
use inflate::check_inflation;

mod inflate;

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
mod tests;

#[cfg(test)]
mod props;

#[cfg(test)]
mod bombs;
