//! Turns one source row into a canonical record, field by field, as the
//! manifest says; or into the reason it cannot be one.
//!
//! A row is a JSON object (JSON sources) or header → cell (CSV, XLSX). Each
//! canonical field is converted to its canonical JSON form (money to fen,
//! dates to ISO, instants to UTC, words to canonical enums) and the result is
//! decoded into the typed record, which checks codes and enumerations. Money
//! is only ever read from strings: a JSON number is never trusted as money.

use std::borrow::Cow;

use chrono::format::{Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value};

use super::manifest::{Field, FieldType, Stream};
use crate::model::{Centi, Collection, Record};
use crate::money::Fen;
use crate::store::Item;

/// A source row: field or column name → value.
pub type Row = Map<String, Value>;

/// Why a row is not a canonical record: what an operator reads in the
/// quarantine.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{name} (from {from:?}): {reason}")]
    Field {
        name: String,
        from: String,
        reason: FieldError,
    },
    #[error("not a valid {collection} record: {reason}")]
    NotARecord {
        collection: Collection,
        reason: serde_json::Error,
    },
    #[error("{flag}: {value} is not a boolean")]
    Flag { flag: String, value: Value },
}

/// Why one source value is not the canonical field it should become.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("missing")]
    Missing,
    #[error("{0} is not a scalar")]
    NotScalar(Value),
    #[error("{0} is not a decimal string (money is never read from a number)")]
    MoneyNotText(Value),
    #[error(transparent)]
    Decimal(#[from] crate::money::DecimalError),
    #[error("{0} is not an integer")]
    NotInteger(Value),
    #[error("{0} is not a boolean")]
    NotBoolean(Value),
    #[error("{value:?} is not a date like {format}")]
    NotDate { value: String, format: String },
    #[error("{0:?} is not an RFC 3339 time")]
    NotRfc3339(String),
    #[error("{value:?} is not a time like {format}")]
    NotTime { value: String, format: String },
    #[error("{0:?} is not a valid local time")]
    NotLocalTime(String),
    #[error("{word:?} is not one of {words:?}")]
    NotAWord { word: String, words: Vec<String> },
}

/// Maps the rows of one stream.
#[derive(Debug, Clone)]
pub struct Mapper {
    collection: Collection,
    /// Each canonical field, its source field, and its chrono format parsed
    /// once (`None` when it has none or the format is not valid).
    fields: Vec<(String, Field, Format)>,
    deleted_when: Option<String>,
}

impl Mapper {
    pub fn new(collection: Collection, stream: &Stream) -> Mapper {
        Mapper {
            collection,
            fields: stream
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), format_items(v)))
                .collect(),
            deleted_when: stream.deleted_when.clone(),
        }
    }

    /// The instant in a source field, read as the stream's `datetime` field
    /// from that source field reads it (RFC 3339 when no field does).
    pub fn instant(&self, row: &Row, source_field: &str) -> Option<DateTime<Utc>> {
        let value = row.get(source_field)?;
        let field = self
            .fields
            .iter()
            .map(|(_, f, items)| (f, items))
            .find(|(f, _)| f.from == source_field && f.kind == FieldType::Datetime);
        match field {
            Some((f, items)) => datetime_of(f, items, &trimmed(value)?).ok(),
            None => value.as_str().and_then(parse_rfc3339),
        }
    }

    /// The key of the record a row is about, read from the key fields alone
    /// (`None` when one of them is missing or invalid): what a row that
    /// cannot be mapped still tells, so that its record counts as seen.
    pub fn key(&self, row: &Row) -> Option<String> {
        let mut fields = Map::new();
        for name in self.collection.key_fields() {
            let (_, field, items) = self.fields.iter().find(|(n, _, _)| n == name)?;
            let value = convert(field, items, row.get(&field.from)).ok()?;
            fields.insert((*name).to_owned(), value);
        }
        Record::key_of(self.collection, &fields)
    }

    /// The row as a canonical change, or why it is not one.
    pub fn map(&self, row: &Row) -> Result<Item, MapError> {
        // Straight from the converted values to the typed record: no JSON
        // object per row, no field name copied.
        let mut canonical = Vec::with_capacity(self.fields.len());
        for (name, field, items) in &self.fields {
            let value =
                convert(field, items, row.get(&field.from)).map_err(|reason| MapError::Field {
                    name: name.clone(),
                    from: field.from.clone(),
                    reason,
                })?;
            canonical.push((name.as_str(), value));
        }
        let record =
            Record::from_fields(self.collection, canonical.into_iter()).map_err(|reason| {
                MapError::NotARecord {
                    collection: self.collection,
                    reason,
                }
            })?;
        let deleted = match &self.deleted_when {
            Some(flag) => match row.get(flag) {
                None | Some(Value::Null) => false,
                Some(v) => as_bool(v).ok_or_else(|| MapError::Flag {
                    flag: flag.clone(),
                    value: v.clone(),
                })?,
            },
            None => false,
        };
        Ok(if deleted {
            Item::Delete(record.key())
        } else {
            Item::from(record)
        })
    }
}

/// The text of a cell as the source wrote it; numbers in their shortest
/// exact form.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "true" | "TRUE" | "1" => Some(true),
            "false" | "FALSE" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `+08:00` → the offset.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    FixedOffset::east_opt(sign * secs)
}

/// An instant as the store writes it: RFC 3339 in UTC.
pub fn utc_string(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses an RFC 3339 instant (any offset) to UTC.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A `date` or `datetime` field's chrono format, parsed.
type Format = Option<Vec<chrono::format::Item<'static>>>;

/// The default format of a `date` field.
const ISO_DATE: &str = "%Y-%m-%d";

/// The field's chrono format parsed once, so that a row does not parse it
/// again: `None` for fields without one (and for a format chrono refuses,
/// which each row then reports as before).
fn format_items(field: &Field) -> Format {
    let format = match (field.kind, field.format.as_deref()) {
        (FieldType::Date, format) => format.unwrap_or(ISO_DATE),
        (FieldType::Datetime, None | Some("rfc3339")) => return None,
        (FieldType::Datetime, Some(format)) => format,
        _ => return None,
    };
    StrftimeItems::new(format).parse_to_owned().ok()
}

/// `s` read by `format`, exactly as chrono's `parse_from_str` reads it,
/// through the parsed `items` when there are some.
fn parse_by(s: &str, format: &str, items: &Format) -> chrono::ParseResult<Parsed> {
    let mut parsed = Parsed::new();
    match items {
        Some(items) => chrono::format::parse(&mut parsed, s, items.iter())?,
        None => chrono::format::parse(&mut parsed, s, StrftimeItems::new(format))?,
    }
    Ok(parsed)
}

/// The text of a scalar cell without surrounding white space.
fn trimmed(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.trim())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Owned(b.to_string())),
        _ => None,
    }
}

fn convert(field: &Field, items: &Format, value: Option<&Value>) -> Result<Value, FieldError> {
    let present = value.filter(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    });
    let Some(v) = present else {
        return if field.optional {
            Ok(Value::Null)
        } else {
            Err(FieldError::Missing)
        };
    };
    let raw = || text_of(v).ok_or_else(|| FieldError::NotScalar(v.clone()));
    // Everything but free text is read without surrounding white space.
    let text = || trimmed(v).ok_or_else(|| FieldError::NotScalar(v.clone()));
    Ok(match field.kind {
        // Kept exactly as the source wrote it: the link step normalises names.
        FieldType::Text => Value::String(raw()?),
        FieldType::Code => {
            let mut code = text()?.into_owned();
            if let Some(strip) = &field.strip {
                code.retain(|c| !strip.contains(c));
            }
            Value::String(code)
        }
        FieldType::Yuan | FieldType::Wan => {
            let Value::String(s) = v else {
                return Err(FieldError::MoneyNotText(v.clone()));
            };
            let fen = if field.kind == FieldType::Yuan {
                Fen::from_yuan(s.trim())
            } else {
                Fen::from_wan(s.trim())
            }?;
            Value::from(fen.0)
        }
        FieldType::Int => Value::from(as_int(v).ok_or_else(|| FieldError::NotInteger(v.clone()))?),
        FieldType::Bool => {
            Value::Bool(as_bool(v).ok_or_else(|| FieldError::NotBoolean(v.clone()))?)
        }
        FieldType::Date => {
            let s = text()?;
            let format = field.format.as_deref().unwrap_or(ISO_DATE);
            let d = parse_by(&s, format, items)
                .and_then(|p| p.to_naive_date())
                .map_err(|_| FieldError::NotDate {
                    value: s.clone().into_owned(),
                    format: format.to_owned(),
                })?;
            Value::String(d.to_string())
        }
        FieldType::Datetime => Value::String(utc_string(datetime_of(field, items, &text()?)?)),
        FieldType::Decimal2 => {
            let c = Centi::parse(&text()?)?;
            Value::from(c.0)
        }
        FieldType::Enum => {
            let word = text()?;
            let canonical =
                field
                    .values
                    .get(word.as_ref())
                    .ok_or_else(|| FieldError::NotAWord {
                        word: word.clone().into_owned(),
                        words: field.values.keys().cloned().collect(),
                    })?;
            Value::String(canonical.clone())
        }
    })
}

/// The instant a `datetime` field's text (already trimmed) names.
fn datetime_of(field: &Field, items: &Format, s: &str) -> Result<DateTime<Utc>, FieldError> {
    Ok(match field.format.as_deref() {
        None | Some("rfc3339") => {
            parse_rfc3339(s).ok_or_else(|| FieldError::NotRfc3339(s.to_owned()))?
        }
        Some(format) => {
            let naive = parse_by(s, format, items)
                .and_then(|p| p.to_naive_datetime_with_offset(0))
                .map_err(|_| FieldError::NotTime {
                    value: s.to_owned(),
                    format: format.to_owned(),
                })?;
            let offset = field
                .offset
                .as_deref()
                .and_then(parse_offset)
                .unwrap_or(Utc.fix());
            offset
                .from_local_datetime(&naive)
                .single()
                .ok_or_else(|| FieldError::NotLocalTime(s.to_owned()))?
                .with_timezone(&Utc)
        }
    })
}

/// An integer from a JSON integer, a whole float (XLSX stores every number
/// as a float) or a string of digits.
fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // Years and quarters, never money: a whole float is exact.
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::manifest::Manifest;
    use serde_json::json;

    fn mapper(agency: &str, collection: &str) -> Mapper {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("adapters/{agency}.toml"));
        let m = Manifest::load(&path).unwrap();
        let stream = m
            .streams
            .iter()
            .find(|s| s.collection == collection)
            .unwrap();
        Mapper::new(Collection::parse(m.agency, collection).unwrap(), stream)
    }

    fn row(v: Value) -> Row {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn npc_budgets_convert_wan_and_dashed_codes_exactly() {
        let m = mapper("npc", "budgets");
        let item = m
            .map(&row(json!({
                "项目编码": "370100-2021-000123", "年度": 2021, "批准数": "125.000001",
                "调整数": "-0.500000", "批准日期": "2021-01-20", "更新时间": "2021-01-20 10:00:00"
            })))
            .unwrap();
        let Item::Upsert(u) = &item else {
            panic!("{item:?}")
        };
        let Record::ApprovedBudget(b) = u.record() else {
            panic!("{item:?}")
        };
        assert_eq!(b.project_code.as_str(), "3701002021000123");
        assert_eq!(b.approved, Fen(125_000_001));
        assert_eq!(b.adjustment, Fen(-500_000));
        assert_eq!(utc_string(b.updated_at), "2021-01-20T02:00:00Z");
    }

    #[test]
    fn bad_money_is_a_reason_not_a_guess() {
        let m = mapper("finance", "payments");
        let base = json!({
            "payment_id": "P1", "project_code": "3701002021000123", "kind": "allocation",
            "amount": "12,34.5x", "paid_on": "2021-03-01", "voided": false,
            "updated_at": "2021-06-30T16:20:00+08:00"
        });
        let e = m.map(&row(base.clone())).unwrap_err().to_string();
        assert!(
            e.starts_with("amount (from \"amount\"): \"12,34.5x\" is not an amount in yuan"),
            "{e}"
        );
        let mut as_number = base.clone();
        as_number["amount"] = json!(12.5);
        assert!(
            m.map(&row(as_number))
                .unwrap_err()
                .to_string()
                .contains("never read from a number")
        );
        let mut voided = base;
        voided["amount"] = json!("1.00");
        voided["voided"] = json!(true);
        assert_eq!(m.map(&row(voided)).unwrap(), Item::Delete("P1".into()));
    }

    #[test]
    fn audit_rows_keep_names_and_read_unpadded_dates() {
        let m = mapper("audit", "findings");
        let item = m
            .map(&row(json!({
                "问题编号": "SJ-2021-0042", "被审计单位": " 市教育局 (本级)", "项目编码": "",
                "问题类型": "挤占挪用", "涉及金额": "12.50", "整改状态": "整改中",
                "整改期限": "2021/9/5", "发现日期": "2021/3/15"
            })))
            .unwrap();
        let Item::Upsert(u) = item else { panic!() };
        let Record::AuditFinding(f) = u.record() else {
            panic!()
        };
        assert_eq!(f.unit_name, " 市教育局 (本级)", "names are kept as written");
        assert_eq!(f.project_code, None);
        assert_eq!(f.amount, Fen(12_500_000));
        assert_eq!(f.deadline.to_string(), "2021-09-05");
        assert_eq!(f.status, crate::model::FindingStatus::InProgress);
    }

    #[test]
    fn orgdept_rates_read_from_number_and_text_cells() {
        let m = mapper("orgdept", "evaluations");
        for rate in [json!(47.5), json!("47.50")] {
            let item = m
                .map(&row(json!({
                    "单位编码": "370101", "单位名称": "市财政局", "年度": 2021.0, "季度": 2.0,
                    "预算执行率": rate, "考评得分": 88.0, "等级": "良"
                })))
                .unwrap();
            let Item::Upsert(u) = item else { panic!() };
            let Record::OrgdeptEvaluation(e) = u.record() else {
                panic!()
            };
            assert_eq!(
                (e.reported_rate, e.quarter, e.score),
                (Centi(4750), 2, Centi(8800))
            );
        }
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use proptest::strategy::{BoxedStrategy, Union};

    use super::*;
    use crate::adapter::manifest::Manifest;
    use crate::testing::{SHIPPED_MANIFESTS, config, json_value};
    use chrono::NaiveDate;

    /// Every stream of every shipped manifest, with its collection.
    fn shipped_streams() -> Vec<(Collection, Stream)> {
        SHIPPED_MANIFESTS
            .iter()
            .flat_map(|(_, text)| {
                let m = Manifest::parse(text).unwrap();
                m.collections()
                    .into_iter()
                    .zip(m.streams)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn s(strategy: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
        strategy.prop_map(Value::String).boxed()
    }

    fn date() -> impl Strategy<Value = NaiveDate> {
        prop_oneof![
            8 => (1990i32..2040, 1u32..=12, 1u32..=31),
            1 => (-262_200i32..=262_200, 1u32..=12, 1u32..=31),
            1 => (prop_oneof![Just(0), Just(9999), Just(10_000), Just(-1)], 1u32..=12, 1u32..=31),
        ]
        .prop_filter_map("a real day", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
    }

    /// `HH:MM:SS`, with fractions and leap seconds now and then.
    fn time() -> impl Strategy<Value = String> {
        (
            0u32..24,
            0u32..60,
            prop_oneof![8 => 0u32..60, 1 => Just(60)],
            "(\\.[0-9]{1,9})?",
        )
            .prop_map(|(h, m, s, frac)| format!("{h:02}:{m:02}:{s:02}{frac}"))
    }

    /// What a source would send for a field named `name`: valid values
    /// first, then near misses.
    fn plausible(name: &str, field: &Field) -> (BoxedStrategy<Value>, BoxedStrategy<Value>) {
        match field.kind {
            FieldType::Text => (
                prop_oneof![s("[ 市局（）()a-z0-9]{1,12}"), s(any::<String>())].boxed(),
                prop_oneof![any::<i64>().prop_map(Value::from), Just(Value::Bool(true))].boxed(),
            ),
            FieldType::Code => {
                let valid = match (name, field.strip.is_some()) {
                    ("unit_code" | "parent_code", _) => s("[ ]?[0-9]{6}[ ]?"),
                    ("project_code", false) => s("[0-9]{16}"),
                    ("project_code", true) => s("[0-9]{6}-[0-9]{4}-[0-9]{6}"),
                    _ => s("[A-Z]{1,3}-[0-9]{1,6}"),
                };
                let near = prop_oneof![
                    s("[0-9]{5,7}|[0-9]{15,17}|[0-9]{6}-[0-9]{4}-[0-9]{6}"),
                    (100_000i64..1_000_000).prop_map(Value::from),
                    s(any::<String>()),
                ];
                (valid, near.boxed())
            }
            FieldType::Yuan | FieldType::Wan => {
                let places = if field.kind == FieldType::Yuan { 2 } else { 6 };
                (
                    s(proptest::string::string_regex(&format!(
                        "[ ]?-?[0-9]{{1,12}}(\\.[0-9]{{1,{places}}}0{{0,3}})?[ ]?"
                    )).unwrap()),
                    prop_oneof![
                        s("-?[0-9]{1,6}\\.[0-9]{7}[1-9]|-?[0-9]{17,20}\\.[0-9]{0,6}|1e5|12,34"),
                        any::<i64>().prop_map(Value::from),
                        Just(Value::from(12.5)),
                        s(any::<String>()),
                    ]
                    .boxed(),
                )
            }
            FieldType::Int => (
                prop_oneof![
                    (1990i64..2040).prop_map(Value::from),
                    (1i64..5).prop_map(Value::from),
                    prop_oneof![Just(2021.0), Just(2.0)].prop_map(Value::from),
                    s("[ ]?20[0-9]{2}[ ]?"),
                ]
                .boxed(),
                prop_oneof![
                    any::<i64>().prop_map(Value::from),
                    prop_oneof![Just(2.5), Just(-0.0), Just(1e300), Just(8.9e15), Just(-1.0)]
                        .prop_map(Value::from),
                    s("[ ]?-?[0-9]{1,12}[ ]?"),
                ]
                .boxed(),
            ),
            FieldType::Bool => (
                prop_oneof![
                    any::<bool>().prop_map(Value::Bool),
                    (0i64..2).prop_map(Value::from),
                    s(
                        proptest::sample::select(vec![
                            "true", "TRUE", " 1", "0 ", "false", "FALSE"
                        ])
                        .prop_map(str::to_owned)
                    ),
                ]
                .boxed(),
                prop_oneof![
                    Just(Value::from(2)),
                    Just(Value::from(1.0)),
                    s(proptest::sample::select(vec!["yes", "True", "是"]).prop_map(str::to_owned)),
                ]
                .boxed(),
            ),
            FieldType::Date => {
                let format = field.format.clone().unwrap_or_else(|| "%Y-%m-%d".into());
                (
                    date()
                        .prop_map(move |d| Value::String(d.format(&format).to_string()))
                        .boxed(),
                    s("[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}|20[0-9]{2}-02-3[01]"),
                )
            }
            FieldType::Datetime => match field.format.clone() {
                Some(format) if format != "rfc3339" => (
                    (
                        date(),
                        0u32..24,
                        0u32..60,
                        0u32..60,
                        prop_oneof![0u32..1, 0u32..2_000_000_000],
                    )
                        .prop_filter_map("a real time", move |(d, h, m, s, nano)| {
                            let t = d.and_hms_nano_opt(h, m, s, nano)?;
                            Some(Value::String(t.format(&format).to_string()))
                        })
                        .boxed(),
                    (date(), time())
                        .prop_map(|(d, t)| Value::String(format!("{d}T{t}Z")))
                        .boxed(),
                ),
                _ => (
                    (
                        prop_oneof![8 => 1990i32..2040, 1 => 0i32..=9999, 1 => prop_oneof![Just(0), Just(9999)]],
                        1u32..=12,
                        1u32..=31,
                        time(),
                        prop_oneof![
                            Just("Z".to_owned()),
                            Just("+08:00".to_owned()),
                            Just("-23:59".to_owned()),
                            "[+-][01][0-9]:[0-5][0-9]",
                        ],
                    )
                        .prop_map(|(y, m, d, t, o)| {
                            Value::String(format!("{y:04}-{m:02}-{d:02}T{t}{o}"))
                        })
                        .boxed(),
                    (date(), time())
                        .prop_map(|(d, t)| Value::String(format!("{d} {t}")))
                        .boxed(),
                ),
            },
            FieldType::Decimal2 => (
                prop_oneof![
                    s("[0-9]{1,3}(\\.[0-9]{1,2})?"),
                    prop_oneof![Just(47.5), Just(88.0), Just(100.0), Just(0.01)]
                        .prop_map(Value::from),
                ]
                .boxed(),
                prop_oneof![
                    s("-?[0-9]{1,5}\\.[0-9]{2}[1-9]|-1|[0-9]{20}"),
                    prop_oneof![Just(0.125), Just(-1.0), Just(1e17), Just(1e300)]
                        .prop_map(Value::from),
                ]
                .boxed(),
            ),
            FieldType::Enum => {
                let mut words: Vec<String> = field.values.keys().cloned().collect();
                words.extend(field.values.keys().map(|k| format!(" {k} ")));
                (
                    s(proptest::sample::select(words)),
                    s(proptest::sample::select(vec![
                        "其他".to_owned(),
                        "excellent".to_owned(),
                    ])),
                )
            }
        }
    }

    /// A value for one field: mostly valid, now and then a near miss,
    /// missing, blank or any JSON at all.
    fn value_for(name: &str, field: &Field) -> BoxedStrategy<Option<Value>> {
        let (valid, near) = plausible(name, field);
        prop_oneof![
            40 => valid.prop_map(Some),
            1 => near.prop_map(Some),
            1 => Just(None),
            1 => prop_oneof![Just(Value::Null), Just(Value::String(" ".into()))].prop_map(Some),
            1 => json_value().prop_map(Some),
        ]
        .boxed()
    }

    /// A row for one stream: its fields, its deletion flag, and extra keys.
    fn row_for(stream: &Stream) -> BoxedStrategy<Row> {
        let mut cells: Vec<BoxedStrategy<Option<(String, Value)>>> = stream
            .fields
            .iter()
            .map(|(name, f)| {
                let from = f.from.clone();
                value_for(name, f)
                    .prop_map(move |v| v.map(|v| (from.clone(), v)))
                    .boxed()
            })
            .collect();
        if let Some(flag) = stream.deleted_when.clone() {
            cells.push(
                prop_oneof![
                    3 => any::<bool>().prop_map(Value::Bool).prop_map(Some),
                    1 => json_value().prop_map(Some),
                    1 => Just(None),
                ]
                .prop_map(move |v| v.map(|v| (flag.clone(), v)))
                .boxed(),
            );
        }
        let extra =
            proptest::collection::vec(("[a-z_]{1,8}|[\u{4e00}-\u{4e20}]{1,4}", json_value()), 0..3);
        (cells, extra)
            .prop_map(|(cells, extra)| {
                let mut row: Row = cells.into_iter().flatten().collect();
                for (k, v) in extra {
                    row.entry(k).or_insert(v);
                }
                row
            })
            .boxed()
    }

    fn any_stream_and_row() -> impl Strategy<Value = (usize, Row)> {
        let streams = shipped_streams();
        Union::new(
            streams
                .iter()
                .enumerate()
                .map(|(i, (_, stream))| row_for(stream).prop_map(move |row| (i, row)).boxed())
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn rows_map_to_reasons_or_records_whose_content_round_trips(
            (i, row) in any_stream_and_row()
        ) {
            let (collection, stream) = &shipped_streams()[i];
            let mapper = Mapper::new(*collection, stream);
            for f in stream.fields.values() {
                let _ = mapper.instant(&row, &f.from);
            }
            match mapper.map(&row) {
                Ok(Item::Upsert(u)) => {
                    let r = u.record();
                    prop_assert_eq!(r.collection(), *collection);
                    // A row's key read alone is the key of its record.
                    prop_assert_eq!(mapper.key(&row), Some(r.key()));
                    prop_assert_eq!(u.key(), r.key());
                    let content = r.content();
                    prop_assert_eq!(u.content(), content.as_str());
                    let back = Record::from_content(*collection, &content)
                        .map_err(|e| TestCaseError::fail(format!("{content}: {e}")))?;
                    prop_assert_eq!(&back, r);
                }
                Ok(Item::Delete(key)) => {
                    prop_assert!(stream.deleted_when.is_some());
                    prop_assert_eq!(mapper.key(&row), Some(key.clone()));
                    prop_assert!(!key.is_empty());
                }
                Err(reason) => prop_assert!(!reason.to_string().is_empty()),
            }
        }
    }
}
