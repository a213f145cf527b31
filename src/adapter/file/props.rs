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
            .prop_map(|(name, spaced, rest)| CsvFile::NameTwice { name, spaced, rest }),
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
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
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
