use serde_json::json;

use super::*;

fn cursor_paging() -> Paging {
    Paging::Cursor {
        records: "data".into(),
        cursor_param: "cursor".into(),
        next_cursor: "next_cursor".into(),
        limit_param: "limit".into(),
        limit: 2,
    }
}

#[test]
fn an_answer_naming_a_key_twice_is_refused() {
    let body = br#"{"data": [{"payment_id": "P-1", "amount": "1.00", "amount": "100.00"}]}"#;
    match decode_body("https://x/api/v1/payments", body) {
        Err(e @ FetchError::Ambiguous { .. }) => {
            assert!(!e.is_retriable());
            let FetchError::Ambiguous { url, reason } = e else {
                unreachable!()
            };
            assert_eq!(url, "https://x/api/v1/payments");
            assert!(
                reason.starts_with("key \"amount\" appears twice in one object"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(decode_body("u", br#"{"data": [{"a": 1}, {"a": 2}]}"#).is_ok());
}

#[test]
fn a_cursor_that_comes_back_ends_the_walk_with_an_error() {
    let paging = cursor_paging();
    let mut walk = PageWalk::new(&paging);
    let page = |rows: Value, next: &str| json!({"data": rows, "next_cursor": next});
    assert_eq!(walk.take(page(json!([1, 2]), "a")).unwrap().len(), 2);
    assert_eq!(walk.take(page(json!([3, 4]), "b")).unwrap().len(), 2);
    assert_eq!(
        walk.take(page(json!([5, 6]), "a")),
        Err(Refused::Endless(
            "page 3 hands out cursor \"a\" again".into()
        ))
    );
    // Refused, the walk stays where it was: still asking for "b".
    assert_eq!(walk.position, Position::Cursor(Some("b".into())));
    assert_eq!((walk.received, walk.finished), (4, false));
    // An empty last page that repeats its own cursor is the honest end.
    assert!(walk.take(page(json!([]), "b")).unwrap().is_empty());
    assert!(walk.finished && walk.complete());
}

#[test]
fn a_source_that_ignores_the_offset_is_refused_on_the_third_same_page() {
    let paging = Paging::Offset {
        records: "items".into(),
        offset_param: "offset".into(),
        limit_param: "limit".into(),
        limit: 2,
        has_more: "has_more".into(),
    };
    let mut walk = PageWalk::new(&paging);
    let page = json!({"items": [{"id": 1}, {"id": 2}], "has_more": true});
    walk.take(page.clone()).unwrap();
    // Once can be honest (a row inserted ahead shifts the page)...
    walk.take(page.clone()).unwrap();
    // ...a third time cannot.
    assert_eq!(
        walk.take(page.clone()),
        Err(Refused::Endless(
            "page 3 is the same as the 2 before it".into()
        ))
    );
    assert_eq!(
        (walk.position.clone(), walk.received),
        (Position::Offset(4), 4)
    );
    // A different page goes on as before.
    walk.take(json!({"items": [{"id": 3}], "has_more": false}))
        .unwrap();
    assert!(walk.finished);
}

#[test]
fn an_endless_walk_is_a_clear_error_that_is_not_retried() {
    let e = FetchError::Endless {
        url: "https://finance.example/api/v1/payments".into(),
        reason: "page 3 hands out cursor \"a\" again".into(),
    };
    assert!(!e.is_retriable());
    assert_eq!(
        e.to_string(),
        "https://finance.example/api/v1/payments: the paging never ends \
         (page 3 hands out cursor \"a\" again); nothing of this run is kept"
    );
}
