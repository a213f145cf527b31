use proptest::prelude::*;
use serde_json::Map;

use super::*;
use crate::adapter::manifest::Manifest;
use crate::testing::{SHIPPED_MANIFESTS, config, json_value};

/// The paging of every shipped HTTP manifest, none, and page numbers
/// without a total.
fn pagings() -> Vec<Paging> {
    let mut pagings: Vec<Paging> = SHIPPED_MANIFESTS
        .iter()
        .map(|(_, text)| Manifest::parse(text).unwrap())
        .filter(Manifest::is_http)
        .map(|m| m.paging)
        .collect();
    pagings.push(Paging::None);
    pagings.push(Paging::PageNumber {
        records: "rows".into(),
        page_param: "page".into(),
        size_param: "size".into(),
        size: 2,
        total: None,
    });
    pagings
}

/// The parts of one answer; `whole` replaces them all.
#[derive(Debug, Clone)]
struct Answer {
    whole: Option<Value>,
    records: Option<Value>,
    cursor: Option<Value>,
    total: Option<Value>,
    more: Option<Value>,
    extra: Vec<(String, Value)>,
}

fn rows() -> impl Strategy<Value = Value> {
    proptest::collection::vec(json_value(), 0..4).prop_map(Value::Array)
}

fn answer() -> impl Strategy<Value = Answer> {
    let part = |likely: BoxedStrategy<Value>| prop_oneof![6 => likely.prop_map(Some), 1 => json_value().prop_map(Some), 1 => Just(None)];
    (
        prop_oneof![9 => Just(None), 1 => json_value().prop_map(Some)],
        part(rows().boxed()),
        part(prop_oneof!["[ab]{0,2}".prop_map(Value::String), Just(Value::Null)].boxed()),
        part((0u64..8).prop_map(Value::from).boxed()),
        part(any::<bool>().prop_map(Value::Bool).boxed()),
        proptest::collection::vec(("[a-z_]{1,6}", json_value()), 0..2),
    )
        .prop_map(|(whole, records, cursor, total, more, extra)| Answer {
            whole,
            records,
            cursor,
            total,
            more,
            extra,
        })
}

/// The answer as a server of `paging` would send it.
fn build(paging: &Paging, a: &Answer) -> Value {
    if let Some(whole) = &a.whole {
        return whole.clone();
    }
    let names = match paging {
        Paging::None => return a.records.clone().unwrap_or(Value::Null),
        Paging::Cursor {
            records,
            next_cursor,
            ..
        } => [Some(records), Some(next_cursor), None, None],
        Paging::PageNumber { records, total, .. } => [Some(records), None, total.as_ref(), None],
        Paging::Offset {
            records, has_more, ..
        } => [Some(records), None, None, Some(has_more)],
    };
    let mut object: Map<String, Value> = a.extra.iter().cloned().collect();
    for (name, value) in names.iter().zip([&a.records, &a.cursor, &a.total, &a.more]) {
        if let (Some(name), Some(value)) = (name, value) {
            object.insert((*name).clone(), value.clone());
        }
    }
    Value::Object(object)
}

/// Where the walk stands, to compare before and after an answer.
fn state(w: &PageWalk<'_>) -> (Position, bool, u64, Option<u64>, Vec<(String, String)>) {
    (
        w.position.clone(),
        w.finished,
        w.received,
        w.total,
        w.query(),
    )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_answer_is_rows_and_a_next_step_or_an_error_that_changes_nothing(
        which in 0usize..5,
        answers in proptest::collection::vec(answer(), 1..8),
    ) {
        let pagings = pagings();
        let paging = &pagings[which];
        let mut walk = PageWalk::new(paging);
        for a in &answers {
            if walk.finished {
                break;
            }
            let answer = build(paging, a);
            let before = state(&walk);
            let expected = match paging {
                Paging::None => answer.as_array().cloned(),
                Paging::Cursor { records, .. }
                | Paging::PageNumber { records, .. }
                | Paging::Offset { records, .. } => {
                    answer.get(records).and_then(Value::as_array).cloned()
                }
            };
            let rows = match walk.take(answer.clone()) {
                Ok(rows) => rows,
                Err(Refused::Malformed(_)) => {
                    prop_assert_eq!(expected, None, "an array of rows is never malformed");
                    prop_assert_eq!(state(&walk), before, "an error moves nothing");
                    continue;
                }
                Err(Refused::Endless(reason)) => {
                    // Only a cursor handed out before, or the same page
                    // once too often, is refused as endless.
                    let rows = expected.unwrap_or_default();
                    let cursor_again = matches!(paging, Paging::Cursor { next_cursor, .. }
                        if answer.get(next_cursor).and_then(Value::as_str)
                            .is_some_and(|c| walk.cursors.contains(&cursor_digest(c))));
                    let same_page = !rows.is_empty() && walk.same_pages == SAME_PAGES_TOLERATED
                        && walk.last_page == Some((rows.len(), rows[0].clone(), rows[rows.len() - 1].clone()));
                    prop_assert!(cursor_again || same_page, "{}", reason);
                    prop_assert_eq!(state(&walk), before, "an error moves nothing");
                    break;
                }
            };
            prop_assert_eq!(Some(&rows), expected.as_ref());
            let n = rows.len() as u64;
            prop_assert_eq!(walk.received, before.2 + n);
            match (paging, &before.0, &walk.position) {
                (Paging::None, _, _) => prop_assert!(walk.finished),
                (Paging::Cursor { next_cursor, cursor_param, .. }, Position::Cursor(was), Position::Cursor(now)) => {
                    let next = answer.get(next_cursor).and_then(Value::as_str);
                    if walk.finished {
                        prop_assert!(
                            next.is_none_or(str::is_empty) || (n == 0 && next == was.as_deref()),
                            "stopped at {:?} with {} rows", next, n
                        );
                    } else {
                        prop_assert_eq!(now.as_deref(), next);
                        let wanted = (cursor_param.clone(), next.unwrap_or_default().to_owned());
                        prop_assert!(walk.query().contains(&wanted));
                    }
                }
                (Paging::PageNumber { total, .. }, Position::Page(was), Position::Page(now)) => {
                    prop_assert_eq!(*now, was + 1);
                    let announced = total.as_ref().and_then(|t| answer.get(t)).and_then(Value::as_u64);
                    prop_assert_eq!(walk.total, announced);
                    prop_assert_eq!(walk.finished, n == 0 || announced.is_some_and(|t| walk.received >= t));
                }
                (Paging::Offset { has_more, .. }, Position::Offset(was), Position::Offset(now)) => {
                    prop_assert_eq!(*now, was + n);
                    let more = answer.get(has_more).and_then(Value::as_bool) == Some(true);
                    prop_assert_eq!(walk.finished, n == 0 || !more);
                }
                (_, was, now) => {
                    return Err(TestCaseError::fail(format!("{was:?} became {now:?}")));
                }
            }
            prop_assert!(!walk.complete() || walk.finished);
        }
    }

    #[test]
    fn answers_cut_short_are_decode_errors_that_are_retried(
        which in 0usize..5,
        a in answer(),
        pretty in any::<bool>(),
    ) {
        let pagings = pagings();
        let mut page = build(&pagings[which], &a);
        if !(page.is_object() || page.is_array()) {
            // Pages are objects or arrays; a bare "12" cut to "1" is JSON.
            page = Value::Array(vec![page]);
        }
        let bytes = if pretty {
            serde_json::to_vec_pretty(&page).unwrap()
        } else {
            serde_json::to_vec(&page).unwrap()
        };
        // Whole, it decodes (serde_json without `float_roundtrip` may read a
        // long float back one bit off, so not compared: money is never a
        // JSON number here).
        prop_assert!(decode_body("u", &bytes).is_ok());
        for cut in 0..bytes.len() {
            match decode_body("u", &bytes[..cut]) {
                Err(e @ FetchError::Decode { .. }) => prop_assert!(e.is_retriable()),
                other => return Err(TestCaseError::fail(format!("cut at {cut}: {other:?}"))),
            }
        }
    }
}
