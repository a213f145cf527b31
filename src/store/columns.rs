//! How the stages' types are spelled in columns: every enum the store keeps
//! as text and every integer newtype it keeps as `BIGINT`, decoded and
//! encoded here once for both backends, so that no stage compares a column's
//! string.
//!
//! An enum that the store spells itself is declared with [`text_enum!`]: its
//! words are written once, in the store's row code, and serve the database,
//! JSON and `Display` alike. A type that already has its words (`as_str` and
//! `parse`) gets the database part with [`text_column!`]; the model's
//! enumerations, which the adapters write as their serde words, are read
//! back with [`word_column!`].

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode};

use crate::model::{
    ActionKind, Agency, Centi, FindingStatus, PaymentKind, ProjectCategory, QuotaKind,
    RectificationStatus, ReferralOrigin, ReferralStatus,
};
use crate::money::Fen;
use crate::reconcile::{Finding, RuleId, Severity};

/// Declares an enum stored as text, with its words: `as_str`, `parse`,
/// `ALL`, `Display`, serde and both backends' column mapping.
macro_rules! text_enum {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    ::serde::de::Error::custom(format!(
                        "{s:?} is not a {} ({})",
                        stringify!($name),
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }

        $crate::store::columns::text_column!($name);
    };
}
pub(crate) use text_enum;

/// The column type of `$ty`, stored as `$as` (`str` or `i64`): a column
/// of that type holds it.
macro_rules! stored_as {
    ($ty:ty, $as:ty) => {
        impl<DB: ::sqlx::Database> ::sqlx::Type<DB> for $ty
        where
            $as: ::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$as as ::sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$as as ::sqlx::Type<DB>>::compatible(ty)
            }
        }
    };
}
pub(crate) use stored_as;

/// The column mapping of a type with `as_str` and `parse`: stored as its
/// word, a word it does not know is an error of the row.
macro_rules! text_column {
    ($ty:ty) => {
        $crate::store::columns::stored_as!($ty, str);

        impl<'q, DB: ::sqlx::Database> ::sqlx::Encode<'q, DB> for $ty
        where
            &'q str: ::sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut DB::ArgumentBuffer,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&'q str as ::sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: ::sqlx::Database> ::sqlx::Decode<'r, DB> for $ty
        where
            &'r str: ::sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<$ty, ::sqlx::error::BoxDynError> {
                let s = <&'r str as ::sqlx::Decode<'r, DB>>::decode(value)?;
                <$ty>::parse(s)
                    .ok_or_else(|| format!("{s:?} is not a stored {}", stringify!($ty)).into())
            }
        }
    };
}
pub(crate) use text_column;

text_column!(Agency);
text_column!(RuleId);
text_column!(Severity);

/// The column mapping of a model enumeration, kept as its serde word (the
/// adapters write records' typed columns that way).
macro_rules! word_column {
    ($($ty:ty),+ $(,)?) => {$(
        stored_as!($ty, str);

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<$ty, BoxDynError> {
                let s = <&'r str as Decode<'r, DB>>::decode(value)?;
                Ok(serde_json::from_value(serde_json::Value::String(s.to_owned()))?)
            }
        }
    )+};
}

word_column!(
    FindingStatus,
    RectificationStatus,
    ReferralStatus,
    ReferralOrigin,
    PaymentKind,
    ProjectCategory,
    QuotaKind,
    ActionKind,
);

/// The column mapping of a newtype over `i64` (`BIGINT`).
macro_rules! integer_column {
    ($($ty:ident),+ $(,)?) => {$(
        stored_as!($ty, i64);

        impl<'q, DB: Database> Encode<'q, DB> for $ty
        where
            i64: Encode<'q, DB>,
        {
            fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <i64 as Encode<'q, DB>>::encode(self.0, buf)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            i64: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<$ty, BoxDynError> {
                Ok($ty(<i64 as Decode<'r, DB>>::decode(value)?))
            }
        }
    )+};
}

integer_column!(Fen, Centi);

// A finding as its column holds it: JSON text. Written by the alert rows'
// code, which also keeps its hash; read here.
stored_as!(Finding, str);

impl<'r, DB: Database> Decode<'r, DB> for Finding
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Finding, BoxDynError> {
        Ok(serde_json::from_str(<&'r str as Decode<'r, DB>>::decode(
            value,
        )?)?)
    }
}
