//! What the tests next to the code share: the property tests'
//! configuration, the shipped manifests, a strategy for arbitrary JSON, and
//! a finding for the tests of what is done with findings. Test builds only.
//!
//! Every property runs a few dozen cases so that all of them together take
//! seconds in a debug build; `PROPTEST_CASES=10000 cargo test --lib prop`
//! runs them longer.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Number, Value};

/// `cases` cases, or as many as `PROPTEST_CASES` asks for. Failures are not
/// persisted to files: a failure found is written down as a plain regression
/// test next to the property.
pub fn config(cases: u32) -> Config {
    // `Config::default()` reads PROPTEST_CASES; an explicit count would hide it.
    let from_env = std::env::var_os("PROPTEST_CASES").is_some();
    let default = Config::default();
    Config {
        cases: if from_env { default.cases } else { cases },
        failure_persistence: None,
        ..default
    }
}

/// The five shipped manifests, by agency name.
pub use crate::demo::MANIFESTS as SHIPPED_MANIFESTS;

/// Any JSON number: integers of both signs and beyond `i64`, and finite floats.
pub fn json_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-3i64..3).prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        prop_oneof![
            Just(0.5),
            Just(-0.0),
            Just(2021.0),
            Just(1e300),
            Just(9.1e15)
        ]
        .prop_filter_map("finite", Number::from_f64),
    ]
}

/// Any JSON value, nested a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number().prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
        "[ 0-9a-z.-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A finding of `rule` about `project` of `unit` that every recipient sees
/// whole, for tests of what is done with findings.
pub fn finding(
    rule: crate::reconcile::RuleId,
    severity: crate::reconcile::Severity,
    unit: &str,
    project: &str,
) -> crate::reconcile::Finding {
    use crate::model::Agency;
    use crate::reconcile::{Finding, SourceRef, View};
    Finding {
        rule,
        severity,
        recipients: vec![Agency::Finance, Agency::Npc],
        unit_code: Some(unit.to_owned()),
        project_code: Some(project.to_owned()),
        confidential: false,
        view: View {
            subject: serde_json::json!({"rule": rule.as_str(), "project": project, "year": 2021}),
            summary: format!("项目{project}"),
            facts: serde_json::json!({"project": project}),
            sources: vec![SourceRef::new(Agency::Finance, "projects", project)],
        },
        redacted: None,
    }
}
