//! Webhook subscribers and the Standard Webhooks signature.
//!
//! `webhook-signature` is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//! where the key is the bytes that the configured `whsec_…` secret encodes;
//! several signatures, space-separated, while a secret is being rotated.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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

/// Decodes a `whsec_…` secret into its key bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret
        .strip_prefix("whsec_")
        .ok_or("a webhook secret must start with whsec_")?;
    let key = STANDARD
        .decode(b64.trim())
        .map_err(|_| "a webhook secret must be whsec_ followed by base64")?;
    if key.len() < 16 {
        return Err("a webhook secret must hold at least 16 bytes".into());
    }
    Ok(key)
}

/// The `webhook-signature` value for one message.
pub fn sign(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .filter_map(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            Some(format!(
                "v1,{}",
                STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Subscriber {
    pub fn build(name: &str, c: &SubscriberConfig) -> Result<Subscriber, String> {
        let keys = c
            .secrets
            .iter()
            .map(|r| decode_secret(r.read()?.expose()).map_err(|e| format!("{r}: {e}")))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| format!("subscriber {name}: {e}"))?;
        let events = c
            .events
            .as_ref()
            .map(|events| {
                events
                    .iter()
                    .map(|e| {
                        EventType::parse(e)
                            .ok_or_else(|| format!("subscriber {name}: unknown event type {e:?}"))
                    })
                    .collect::<Result<Vec<_>, String>>()
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
pub fn build_all(config: &Config) -> Result<Vec<Subscriber>, String> {
    config
        .subscribers
        .iter()
        .map(|(name, c)| Subscriber::build(name, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &[key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }
}
