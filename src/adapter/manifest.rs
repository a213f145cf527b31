//! The adapter manifest: a declarative description, one TOML file per agency
//! system, of how to reach it and how its rows become canonical records.
//!
//! A manifest says *how* a system talks (transport, auth, paging, sync mode,
//! field mapping); the daemon config says *where* it is and supplies the
//! secrets. A manifest never holds a secret: auth names the secrets it needs
//! and the config provides them. `adapters/README.md` documents the format.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::model::{Agency, Collection};

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("manifest {path}: {message}")]
pub struct ManifestError {
    pub path: String,
    pub message: String,
}

/// Manifest text that does not describe a usable adapter: the first
/// problem, in the words an operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Invalid {
        Invalid(message.to_owned())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The agency whose system this is: npc, finance, audit, discipline, orgdept.
    pub agency: Agency,
    /// One line for operators.
    #[serde(default)]
    pub description: String,
    pub transport: Transport,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub paging: Paging,
    pub sync: Sync,
    #[serde(rename = "stream")]
    pub streams: Vec<Stream>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// HTTP(S) with JSON answers.
    Http {
        /// Whole-request timeout, seconds.
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
        #[serde(default = "default_connect_timeout")]
        connect_timeout_secs: u64,
        /// Largest answer accepted for one page, bytes.
        #[serde(default = "default_max_response")]
        max_response_bytes: u64,
        /// The server's certificate is signed by the agency's own CA, which
        /// the config must supply (`tls.ca`); public roots are not trusted.
        #[serde(default)]
        private_ca: bool,
        /// The system requires mutual TLS: the config must supply
        /// `tls.client_cert` and `tls.client_key`.
        #[serde(default)]
        client_certificate: bool,
    },
    /// Files dropped into an exchange directory that the config names.
    File {
        /// File-name pattern; `*` matches any run of characters. Names ending
        /// in `.part` (still being written) never match.
        pattern: String,
        /// `newest`: only the file whose name sorts last; `every`: all files.
        take: Take,
        format: FileFormat,
        /// Text encoding of CSV files (`utf-8`, `gbk`, …).
        #[serde(default)]
        encoding: Option<String>,
        /// The worksheet of XLSX files.
        #[serde(default)]
        sheet: Option<String>,
        /// Largest file accepted, bytes.
        #[serde(default = "default_max_file")]
        max_file_bytes: u64,
        /// Largest total an XLSX workbook may inflate to, bytes: the sizes
        /// its parts declare and, since those can lie, the bytes they really
        /// inflate to, counted before the workbook is parsed. CSV and JSON
        /// files are not compressed and ignore it.
        #[serde(default = "default_max_inflated")]
        max_inflated_bytes: u64,
    },
}

fn default_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_max_response() -> u64 {
    16 * 1024 * 1024
}
fn default_max_file() -> u64 {
    1024 * 1024 * 1024
}
/// calamine holds a workbook's shared strings whole, at up to about five
/// times their XML size (measured: 155 MiB for 32 MiB of empty strings), so
/// 256 MiB bounds a hostile workbook near 1.3 GiB; a quarter's workbook for
/// 10,000 units inflates to 3.1 MiB, and 256 MiB is some five million cells.
fn default_max_inflated() -> u64 {
    256 * 1024 * 1024
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Take {
    Newest,
    Every,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Xlsx,
    /// A JSON array of objects, or one object per line.
    Json,
}

/// How requests authenticate. Secret fields name entries of the adapter's
/// `secrets` table in the daemon config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    #[default]
    None,
    /// A fixed key in a request header.
    ApiKey { header: String, secret: String },
    /// `Authorization: Bearer <secret>`.
    Bearer { secret: String },
    /// OAuth2 client credentials; a 401 fetches a new token and retries once.
    Oauth2ClientCredentials {
        token_path: String,
        client_id: String,
        client_secret: String,
    },
}

impl Auth {
    /// The names of the secrets this auth needs from the config.
    pub fn secret_names(&self) -> Vec<&str> {
        match self {
            Auth::None => vec![],
            Auth::ApiKey { secret, .. } | Auth::Bearer { secret } => vec![secret],
            Auth::Oauth2ClientCredentials {
                client_id,
                client_secret,
                ..
            } => vec![client_id, client_secret],
        }
    }
}

/// How an HTTP answer is split into pages and where its rows sit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paging {
    /// One request, one answer.
    #[default]
    None,
    /// `?cursor=` from the previous answer's `next_cursor` until it is null.
    Cursor {
        records: String,
        cursor_param: String,
        next_cursor: String,
        limit_param: String,
        limit: u32,
    },
    /// `?page=1,2,…` until a page has no rows.
    PageNumber {
        records: String,
        page_param: String,
        size_param: String,
        size: u32,
        /// The field holding the total number of rows, checked against what
        /// was received: a snapshot that falls short deletes nothing.
        #[serde(default)]
        total: Option<String>,
    },
    /// `?offset=n` until `has_more` is false.
    Offset {
        records: String,
        offset_param: String,
        limit_param: String,
        limit: u32,
        has_more: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sync {
    /// Each request carries the last high-water mark; the source sends what
    /// changed since (inclusive). Deletions come as flagged rows.
    Incremental {
        /// The request parameter carrying the mark (RFC 3339).
        since_param: String,
        /// The row field whose largest value becomes the next mark.
        high_water: String,
    },
    /// Every pull is the whole data set; a key absent from a complete
    /// snapshot has been deleted.
    Snapshot,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// The canonical collection, by its name within the manifest's agency.
    pub collection: String,
    /// The request path (HTTP transport), appended to the base URL.
    #[serde(default)]
    pub path: Option<String>,
    /// A row whose field of this name is true is a deletion of its key.
    #[serde(default)]
    pub deleted_when: Option<String>,
    /// Canonical field name → where it comes from and how it converts.
    pub fields: BTreeMap<String, Field>,
}

/// One canonical field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The source's field (JSON key or column header).
    pub from: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Missing, null or empty becomes null instead of an error.
    #[serde(default)]
    pub optional: bool,
    /// chrono format of `date` and `datetime` fields; `rfc3339` (the default
    /// for datetimes) for offset timestamps.
    #[serde(default)]
    pub format: Option<String>,
    /// The UTC offset of a `datetime` whose format has none, e.g. `+08:00`.
    #[serde(default)]
    pub offset: Option<String>,
    /// Characters removed from a `code` (npc writes `370100-2021-000123`).
    #[serde(default)]
    pub strip: Option<String>,
    /// Source word → canonical word, for `enum` fields.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text, exactly as the source wrote it.
    Text,
    /// An identifier: text, trimmed, `strip` characters removed.
    Code,
    /// Money in yuan (up to 2 places) to fen.
    Yuan,
    /// Money in 万元 (up to 6 places) to fen.
    Wan,
    /// An integer, from a number or a string.
    Int,
    /// A boolean, from a JSON boolean or `true`/`false`/`1`/`0`.
    Bool,
    /// A date in `format` (default `%Y-%m-%d`).
    Date,
    /// An instant in `format` (default RFC 3339), stored as UTC.
    Datetime,
    /// A decimal with up to 2 places (scores, rates), to hundredths.
    Decimal2,
    /// A word mapped through `values`.
    Enum,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let err = |message: String| ManifestError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Manifest::parse(&text).map_err(|e| err(e.0))
    }

    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Manifest, Invalid> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| Invalid(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The canonical collection of each stream, in order.
    pub fn collections(&self) -> Vec<Collection> {
        self.streams
            .iter()
            .filter_map(|s| Collection::parse(self.agency, &s.collection))
            .collect()
    }

    pub fn is_http(&self) -> bool {
        matches!(self.transport, Transport::Http { .. })
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.streams.is_empty() {
            return Err("no [[stream]]".into());
        }
        for s in &self.streams {
            if Collection::parse(self.agency, &s.collection).is_none() {
                return Err(format!(
                    "stream collection {:?} is not a collection of {}",
                    s.collection, self.agency
                )
                .into());
            }
            match (&self.transport, &s.path) {
                (Transport::Http { .. }, None) => {
                    return Err(format!("stream {} needs a path", s.collection).into());
                }
                (Transport::File { .. }, Some(_)) => {
                    return Err(
                        format!("stream {}: file transports take no path", s.collection).into(),
                    );
                }
                _ => {}
            }
            for (name, f) in &s.fields {
                // A blank header names no column, and blanks may repeat
                // (src/adapter/file.rs): no field may read one.
                if f.from.trim().is_empty() {
                    return Err(format!("field {name}: from names no source field").into());
                }
                if f.kind == FieldType::Enum && f.values.is_empty() {
                    return Err(format!("field {name}: an enum needs values").into());
                }
                if f.kind != FieldType::Enum && !f.values.is_empty() {
                    return Err(format!("field {name}: only enum fields take values").into());
                }
                if let Some(offset) = &f.offset
                    && crate::adapter::mapping::parse_offset(offset).is_none()
                {
                    return Err(
                        format!("field {name}: offset {offset:?} is not like +08:00").into(),
                    );
                }
            }
        }
        if let Transport::File { format, .. } = &self.transport {
            if self.streams.len() != 1 {
                return Err("a file transport has exactly one stream".into());
            }
            if !matches!(self.paging, Paging::None) {
                return Err("a file transport has no paging".into());
            }
            if !matches!(self.auth, Auth::None) {
                return Err("a file transport has no auth".into());
            }
            if !matches!(self.sync, Sync::Snapshot) {
                return Err("a file transport is a snapshot".into());
            }
            if let Transport::File {
                encoding: Some(enc),
                ..
            } = &self.transport
                && encoding_rs::Encoding::for_label(enc.as_bytes()).is_none()
            {
                return Err(format!("unknown encoding {enc:?}").into());
            }
            if *format == FileFormat::Xlsx
                && matches!(&self.transport, Transport::File { sheet: None, .. })
            {
                return Err("an xlsx transport needs a sheet".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifests_parse() {
        for name in ["finance", "npc", "audit", "discipline", "orgdept"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("adapters/{name}.toml"));
            let m = Manifest::load(&path).unwrap();
            assert_eq!(m.agency.as_str(), name);
        }
    }

    #[test]
    fn mistakes_are_named() {
        let base = r#"
agency = "npc"
[transport]
kind = "http"
[sync]
mode = "snapshot"
"#;
        let e = Manifest::parse(&format!(
            "{base}[[stream]]\ncollection = \"payments\"\npath = \"/x\"\n[stream.fields]\n"
        ))
        .unwrap_err();
        assert!(e.0.contains("not a collection of npc"), "{e}");
        let e = Manifest::parse(&format!(
            "{base}[[stream]]\ncollection = \"budgets\"\npath = \"/x\"\n[stream.fields]\nx = {{ from = \"a\", type = \"money\" }}\n"
        ))
        .unwrap_err();
        assert!(e.0.contains("unknown variant `money`"), "{e}");
    }

    #[test]
    fn file_limits_default_and_blank_sources_are_refused() {
        let manifest = |limit: &str, from: &str| {
            Manifest::parse(&format!(
                "agency = \"audit\"\n[transport]\nkind = \"file\"\npattern = \"*.csv\"\n\
                 take = \"newest\"\nformat = \"csv\"\n{limit}\n[sync]\nmode = \"snapshot\"\n\
                 [[stream]]\ncollection = \"findings\"\n[stream.fields]\n\
                 finding_no = {{ from = \"{from}\", type = \"code\" }}\n"
            ))
        };
        let limits = |m: Manifest| match m.transport {
            Transport::File {
                max_file_bytes,
                max_inflated_bytes,
                ..
            } => (max_file_bytes, max_inflated_bytes),
            Transport::Http { .. } => unreachable!(),
        };
        assert_eq!(
            limits(manifest("", "问题编号").unwrap()),
            (1 << 30, 256 << 20)
        );
        assert_eq!(
            limits(manifest("max_inflated_bytes = 4096", "问题编号").unwrap()),
            (1 << 30, 4096)
        );
        assert_eq!(
            manifest("", " ").unwrap_err(),
            "field finding_no: from names no source field".into()
        );
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::adapter::file::FileSource;
    use crate::adapter::mapping::{Mapper, parse_offset};
    use crate::testing::{SHIPPED_MANIFESTS, config};

    /// One change to a manifest's text. Indices wrap around its length.
    #[derive(Debug, Clone)]
    enum Edit {
        DeleteLine(usize),
        DuplicateLine(usize),
        SwapLines(usize, usize),
        ReplaceLine(usize, String),
        DeleteChar(usize),
        InsertChar(usize, char),
        ReplaceChar(usize, char),
    }

    /// Lines a manifest could plausibly hold, right or wrong.
    fn line() -> impl Strategy<Value = String> {
        let shipped: Vec<String> = SHIPPED_MANIFESTS
            .iter()
            .flat_map(|(_, text)| text.lines().map(str::to_owned))
            .collect();
        prop_oneof![
            4 => proptest::sample::select(shipped),
            1 => proptest::sample::select(vec![
                "[transport]", "[paging]", "[auth]", "[sync]", "[[stream]]", "[stream.fields]",
                "kind = \"file\"", "kind = \"http\"", "format = \"xlsx\"", "format = \"json\"",
                "encoding = \"no-such\"", "encoding = \"utf-16le\"", "sheet = \"\"",
                "mode = \"incremental\"", "take = \"every\"", "limit = -1", "limit = 4294967296",
                "timeout_secs = 18446744073709551616", "max_file_bytes = 0",
                "max_inflated_bytes = 0", "max_inflated_bytes = -1",
                "x = { from = \"x\", type = \"datetime\", format = \"%Y\", offset = \"+99:99\" }",
                "x = { from = \"x\", type = \"datetime\", offset = \"-23:59\" }",
                "x = { from = \"x\", type = \"datetime\", offset = \"+1:00\" }",
                "x = { from = \"x\", type = \"enum\", values = {} }",
                "x = { from = \"x\", type = \"text\", values = { a = \"b\" } }",
                "agency = \"audit\"", "collection = \"payments\"", "path = \"/x\"",
                "deleted_when = \"\"", "fields = 3", "stream = []",
            ])
            .prop_map(str::to_owned),
            1 => any::<String>(),
        ]
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            any::<usize>().prop_map(Edit::DeleteLine),
            any::<usize>().prop_map(Edit::DuplicateLine),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
            (any::<usize>(), line()).prop_map(|(i, l)| Edit::ReplaceLine(i, l)),
            any::<usize>().prop_map(Edit::DeleteChar),
            (any::<usize>(), any::<char>()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
            (
                any::<usize>(),
                prop_oneof![any::<char>(), Just('"'), Just('='), Just('['), Just('\n')]
            )
                .prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
        ]
    }

    fn apply(text: &str, edit: &Edit) -> String {
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        let mut chars: Vec<char> = text.chars().collect();
        let n = lines.len();
        let m = chars.len().max(1);
        match edit {
            Edit::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) => lines.insert(i % n, lines[i % n].clone()),
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::ReplaceLine(i, l) => lines[i % n] = l.clone(),
            Edit::DeleteChar(i) => {
                if !chars.is_empty() {
                    chars.remove(i % m);
                }
                return chars.into_iter().collect();
            }
            Edit::InsertChar(i, c) => {
                chars.insert(i % (chars.len() + 1), *c);
                return chars.into_iter().collect();
            }
            Edit::ReplaceChar(i, c) => {
                if !chars.is_empty() {
                    chars[i % m] = *c;
                }
                return chars.into_iter().collect();
            }
        }
        lines.join("\n")
    }

    /// What a manifest that parsed promises the rest of the daemon.
    fn check_promises(m: &Manifest) -> Result<(), TestCaseError> {
        prop_assert!(!m.streams.is_empty());
        prop_assert_eq!(m.collections().len(), m.streams.len());
        for (s, collection) in m.streams.iter().zip(m.collections()) {
            let _ = Mapper::new(collection, s);
            prop_assert_eq!(s.path.is_some(), m.is_http());
            for f in s.fields.values() {
                prop_assert_eq!(f.kind == FieldType::Enum, !f.values.is_empty());
                if let Some(offset) = &f.offset {
                    prop_assert!(parse_offset(offset).is_some());
                }
            }
        }
        if !m.is_http() {
            prop_assert_eq!(m.streams.len(), 1);
            let dir = Path::new("/nonexistent");
            prop_assert!(FileSource::new(&m.transport, Some(dir)).is_ok());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_text_is_an_error_or_a_usable_manifest(
            text in prop_oneof![
                any::<String>(),
                proptest::collection::vec(line(), 0..30).prop_map(|l| l.join("\n")),
            ]
        ) {
            if let Ok(m) = Manifest::parse(&text) {
                check_promises(&m)?;
            }
        }

        #[test]
        fn mutated_shipped_manifests_are_errors_or_usable_manifests(
            which in 0..SHIPPED_MANIFESTS.len(),
            edits in proptest::collection::vec(edit(), 0..5),
        ) {
            let (agency, original) = SHIPPED_MANIFESTS[which];
            let text = edits.iter().fold(original.to_owned(), |t, e| apply(&t, e));
            match Manifest::parse(&text) {
                Ok(m) => check_promises(&m)?,
                Err(e) if edits.is_empty() => {
                    return Err(TestCaseError::fail(format!("{agency}.toml does not parse: {e}")));
                }
                Err(_) => {}
            }
        }
    }
}
