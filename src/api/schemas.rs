//! The OpenAPI schemas that no derive can give: the words of the types
//! that spell themselves (an agency, a rule, a state), taken from the
//! types' own lists so that they cannot drift, and the shapes of the JSON
//! that rules and refusals build freely (facts, subjects, figures), typed
//! as maps of scalar values and flat records rather than bare objects.

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

type Schemas = Vec<(String, RefOr<Schema>)>;

/// A string that is one of `words`.
fn words<'a>(description: &str, words: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.into_iter().map(str::to_owned)))
        .description(Some(description))
        .into()
}

/// `PartialSchema` and `ToSchema` for a type spelled as one of a list of
/// words.
macro_rules! word_schema {
    ($ty:ty, $name:literal, $description:literal, $words:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                words($description, $words)
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

use crate::model::{ActionKind, Agency, Source};
use crate::reconcile::{RuleId, Severity};
use crate::store::alerts::{AlertState, EventType, SilenceScope};

word_schema!(
    Agency,
    "Agency",
    "One of the five agencies.",
    Agency::ALL.iter().map(|a| a.as_str())
);
word_schema!(
    Source,
    "Source",
    "Whose system a record comes from: an agency's, or liankong's own (actions).",
    Agency::ALL
        .iter()
        .map(|a| a.as_str())
        .chain([Source::Liankong.as_str()])
);
word_schema!(
    ActionKind,
    "ActionKind",
    "What an agency did (RULES.md § Actions).",
    ActionKind::ALL.iter().map(|k| k.as_str())
);
word_schema!(
    RuleId,
    "RuleId",
    "A rule of RULES.md.",
    RuleId::ALL.iter().map(|r| r.as_str())
);
word_schema!(
    Severity,
    "Severity",
    "How serious a finding is.",
    [Severity::Warning, Severity::Critical].map(Severity::as_str)
);
word_schema!(
    AlertState,
    "AlertState",
    "Where an alert stands: firing or escalated while found, resolved once no longer found.",
    AlertState::ALL.iter().map(|s| s.as_str())
);
word_schema!(
    SilenceScope,
    "SilenceScope",
    "What a silence covers: a rule, a unit or a project.",
    SilenceScope::ALL.iter().map(|s| s.as_str())
);
word_schema!(
    EventType,
    "EventType",
    "The type of a webhook event.",
    EventType::ALL.iter().map(|t| t.as_str())
);

fn reference<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// Pushes `T`'s schema and those it refers to.
fn push<T: ToSchema>(schemas: &mut Schemas) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

/// One value of a fact: a string (codes, dates, money as yuan with two
/// places), a number, a boolean or null.
pub struct FactScalar;

impl PartialSchema for FactScalar {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
                Type::Null,
            ]))
            .description(Some(
                "A string (codes, dates, money as yuan with two places), a number, a boolean or null.",
            ))
            .into()
    }
}

impl ToSchema for FactScalar {}

/// A record inside the facts (a payment, an action): names to scalars.
pub struct FactRecord;

impl PartialSchema for FactRecord {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::RefOr(reference::<FactScalar>())))
            .description(Some(
                "A record the facts list (a payment, an action): field names to scalar values.",
            ))
            .into()
    }
}

impl ToSchema for FactRecord {
    fn schemas(schemas: &mut Schemas) {
        push::<FactScalar>(schemas);
    }
}

/// A fact's value: a scalar, or a list of scalars or of flat records.
pub struct FactValue;

impl PartialSchema for FactValue {
    fn schema() -> RefOr<Schema> {
        let item = OneOfBuilder::new()
            .item(reference::<FactScalar>())
            .item(reference::<FactRecord>());
        OneOfBuilder::new()
            .item(reference::<FactScalar>())
            .item(ArrayBuilder::new().items(RefOr::T(Schema::OneOf(item.build()))))
            .description(Some(
                "A scalar, or a list of scalars (codes, keys) or of records (payments, actions).",
            ))
            .into()
    }
}

impl ToSchema for FactValue {
    fn schemas(schemas: &mut Schemas) {
        push::<FactScalar>(schemas);
        push::<FactRecord>(schemas);
    }
}

/// A map of names to [`FactValue`]s, described.
fn fact_map(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(reference::<FactValue>())))
        .description(Some(description))
}

/// The numbers that prove a finding, as the asking agency may see them.
pub struct AlertFacts;

impl PartialSchema for AlertFacts {
    fn schema() -> RefOr<Schema> {
        fact_map(
            "The numbers that prove the finding, by name; which names depends on the rule \
             (RULES.md). Money is yuan as a string with two places (`\"1250.00\"`), days are \
             `YYYY-MM-DD`. Most name the `project` and `year`, or the `unit`/`unit_code`; \
             `actions` lists the actions on the project that every recipient is told of.",
        )
        .into()
    }
}

impl ToSchema for AlertFacts {
    fn schemas(schemas: &mut Schemas) {
        push::<FactValue>(schemas);
    }
}

/// What an alert is about: its identity is the hash of it.
pub struct AlertSubject;

impl PartialSchema for AlertSubject {
    fn schema() -> RefOr<Schema> {
        fact_map(
            "What the alert is about (its identity is a salted hash of it): the rule and the \
             keys of the condition, such as `project` and `year`, `referral`, `finding` or \
             `projects`.",
        )
        .property("rule", reference::<RuleId>())
        .required("rule")
        .into()
    }
}

impl ToSchema for AlertSubject {
    fn schemas(schemas: &mut Schemas) {
        push::<RuleId>(schemas);
        push::<FactValue>(schemas);
    }
}

/// The figures a refusal rests on.
pub struct RefusalFigures;

impl PartialSchema for RefusalFigures {
    fn schema() -> RefOr<Schema> {
        fact_map(
            "The figures the refusal rests on, by name (money as yuan strings): for example \
             `amount` and `balance` of `reclaim_above_balance`, or `field` of `missing_field`.",
        )
        .into()
    }
}

impl ToSchema for RefusalFigures {
    fn schemas(schemas: &mut Schemas) {
        push::<FactValue>(schemas);
    }
}

/// Money as the API writes it: yuan with two places, as a string.
pub struct Yuan;

impl PartialSchema for Yuan {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^-?[0-9]+\.[0-9]{2}$"))
            .description(Some(
                "Money in yuan with two places, as a string (`\"1250.00\"`), never a JSON number.",
            ))
            .examples(["1250.00"])
            .into()
    }
}

impl ToSchema for Yuan {}
