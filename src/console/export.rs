//! The console's CSV exports: UTF-8 with a byte-order mark (so that a
//! spreadsheet reads the Chinese), and every cell that a spreadsheet would
//! take for a formula (`=`, `+`, `-`, `@`, a tab or a carriage return
//! first) prefixed with `'`, so that an exported unit name never runs.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::clerk::Clerk;
use super::layout::{problem, secure_headers};

/// A cell as written: a would-be formula is made text.
pub fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// The whole file.
pub fn table(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record(header)?;
    for row in rows {
        w.write_record(row.iter().map(|c| cell(c)))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The file as a download named `name`.
pub fn csv_answer(
    clerk: &Clerk,
    name: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Response {
    let Ok(bytes) = table(header, rows) else {
        return problem(
            Some(clerk),
            StatusCode::INTERNAL_SERVER_ERROR,
            "导出失败",
            "CSV 未能生成。",
        );
    };
    let mut r = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response();
    secure_headers(&mut r);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_the_file_opens_as_utf8() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("市财政局"), "市财政局");
        let bytes = table(
            &["a", "b"],
            [vec!["@x".to_owned(), "y,z".to_owned()]].into_iter(),
        )
        .unwrap();
        assert_eq!(bytes, "\u{feff}a,b\n'@x,\"y,z\"\n".as_bytes());
    }
}
