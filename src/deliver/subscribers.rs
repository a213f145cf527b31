//! Webhook subscribers: where each agency's events go, which of them it
//! wants, and the keys its requests are signed with.

use super::signature::{SecretError, decode_secret, sign};
use crate::config::{Config, SubscriberConfig};
use crate::model::Agency;
use crate::store::alerts::EventType;

/// A subscriber ready to sign.
#[derive(Clone)]
pub struct Subscriber {
    pub name: String,
    pub agency: Agency,
    pub url: String,
    keys: Vec<Vec<u8>>,
    events: Option<Vec<EventType>>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.name)
            .field("agency", &self.agency)
            .field("url", &self.url)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// A subscriber that cannot be built, named. It never shows a secret, only
/// where it was to be read from.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    /// `reason` names the reference it could not read.
    #[error("subscriber {subscriber}: {reason}")]
    Unreadable {
        subscriber: String,
        /// Where the secret is read from (`env:VAR`, `file:…`).
        reference: String,
        reason: crate::config::SecretError,
    },
    #[error("subscriber {subscriber}: {reference}: {error}")]
    BadSecret {
        subscriber: String,
        reference: String,
        error: SecretError,
    },
    #[error("subscriber {subscriber}: unknown event type {event:?}")]
    UnknownEvent { subscriber: String, event: String },
}

impl Subscriber {
    pub fn build(name: &str, c: &SubscriberConfig) -> Result<Subscriber, SubscriberError> {
        let keys = c
            .secrets
            .iter()
            .map(|r| {
                let secret = r.read().map_err(|reason| SubscriberError::Unreadable {
                    subscriber: name.to_owned(),
                    reference: r.to_string(),
                    reason,
                })?;
                decode_secret(secret.expose()).map_err(|error| SubscriberError::BadSecret {
                    subscriber: name.to_owned(),
                    reference: r.to_string(),
                    error,
                })
            })
            .collect::<Result<Vec<_>, SubscriberError>>()?;
        let events = c
            .events
            .as_ref()
            .map(|events| {
                events
                    .iter()
                    .map(|e| {
                        EventType::parse(e).ok_or_else(|| SubscriberError::UnknownEvent {
                            subscriber: name.to_owned(),
                            event: e.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, SubscriberError>>()
            })
            .transpose()?;
        Ok(Subscriber {
            name: name.to_owned(),
            agency: c.agency,
            url: c.url.clone(),
            keys,
            events,
        })
    }

    /// A subscriber for tests and the demo, with literal keys.
    pub fn with_keys(name: &str, agency: Agency, url: &str, keys: Vec<Vec<u8>>) -> Subscriber {
        Subscriber {
            name: name.to_owned(),
            agency,
            url: url.to_owned(),
            keys,
            events: None,
        }
    }

    pub fn wants(&self, event_type: EventType) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&event_type))
    }

    pub fn signature(&self, id: &str, timestamp: i64, body: &str) -> String {
        sign(&self.keys, id, timestamp, body)
    }
}

/// Builds every configured subscriber (reading its secrets).
pub fn build_all(config: &Config) -> Result<Vec<Subscriber>, SubscriberError> {
    config
        .subscribers
        .iter()
        .map(|(name, c)| Subscriber::build(name, c))
        .collect()
}
