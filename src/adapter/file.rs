//! The file transport: picks files in an exchange directory and streams their
//! rows (CSV in any encoding, XLSX by sheet, JSON) in chunks, on a blocking
//! thread, so a large file never sits in memory whole.
//!
//! A row that cannot be read (wrong number of cells, bytes that are not valid
//! in the file's encoding) comes out as a bad row with its reason, to be
//! quarantined; the rest of the file still lands.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use calamine::{DataRef, Xlsx};
use serde_json::{Map, Number, Value};
use tokio::sync::mpsc;

use super::http::FetchError;
use super::manifest::{FileFormat, Take, Transport};
use super::mapping::Row;

/// One row as read: a row, or why it is unreadable with its raw text.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceRow {
    Ok(Row),
    Bad { reason: String, raw: String },
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
    pub fn new(transport: &Transport, dir: Option<&Path>) -> Result<FileSource, String> {
        let Transport::File {
            pattern,
            take,
            format,
            encoding,
            sheet,
            max_file_bytes,
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
        let result = self.read_inner(path, chunk.max(1), out);
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
        let size = std::fs::metadata(path).map_err(|e| fail(&e))?.len();
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
            FileFormat::Csv => self.read_csv(path, &mut emit)?,
            FileFormat::Xlsx => self.read_xlsx(path, &mut emit)?,
            FileFormat::Json => read_json(path, &mut emit)?,
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
        emit: &mut dyn FnMut(SourceRow) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
        let file = File::open(path).map_err(|e| fail(&e))?;
        let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(self.encoding))
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
        emit: &mut dyn FnMut(SourceRow) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
        let sheet = self.sheet.as_deref().unwrap_or_default();
        let mut workbook: Xlsx<_> = calamine::open_workbook(path).map_err(|e| fail(&e))?;
        let mut cells = workbook
            .worksheet_cells_reader(sheet)
            .map_err(|e| fail(&format!("sheet {sheet:?}: {e}")))?;
        let mut headers: Vec<(u32, String)> = Vec::new();
        let mut header_row: Option<u32> = None;
        let mut current: Option<(u32, Row)> = None;
        loop {
            let cell = cells.next_cell().map_err(|e| fail(&e))?;
            let Some(cell) = cell else { break };
            let (r, c) = cell.get_position();
            let value = cell_value(cell.get_value());
            if header_row.is_none() {
                header_row = Some(r);
            }
            if header_row == Some(r) {
                if let Some(Value::String(name)) = value {
                    headers.push((c, name.trim().to_owned()));
                } else if let Some(v) = value {
                    headers.push((c, v.to_string()));
                }
                continue;
            }
            if current.as_ref().is_some_and(|(row, _)| *row != r)
                && let Some((_, row)) = current.take()
            {
                emit(SourceRow::Ok(row))?;
            }
            let (_, row) = current.get_or_insert_with(|| (r, Map::new()));
            if let (Some(v), Some((_, name))) = (value, headers.iter().find(|(hc, _)| *hc == c)) {
                row.insert(name.clone(), v);
            }
        }
        if let Some((_, row)) = current.take() {
            emit(SourceRow::Ok(row))?;
        }
        Ok(())
    }
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
    emit: &mut dyn FnMut(SourceRow) -> Result<(), FetchError>,
) -> Result<(), FetchError> {
    let fail = |e: &dyn std::fmt::Display| FetchError::File(format!("{}: {e}", path.display()));
    let reader = BufReader::new(File::open(path).map_err(|e| fail(&e))?);
    // One object per line, or one array of objects.
    for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
        let value = value.map_err(|e| fail(&e))?;
        let values = match value {
            Value::Array(values) => values,
            other => vec![other],
        };
        for v in values {
            emit(match v {
                Value::Object(row) => SourceRow::Ok(row),
                other => SourceRow::Bad {
                    reason: "not an object".into(),
                    raw: other.to_string(),
                },
            })?;
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
}
