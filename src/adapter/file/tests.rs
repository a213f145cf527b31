use super::inflate::{claimed_strings, inflate_within, largest_count};
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
    let (_dir, src, path) = source_with(FileFormat::Csv, Some("gbk"), "b.csv", b"\xff\xfe\n\x00");
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
