//! The HTTP transport: a client per adapter (timeouts, private CA, client
//! certificate), request authentication (API key, bearer, OAuth2 client
//! credentials with a refresh on 401), retries of each page, and the pagers
//! that walk cursor, page-number and offset APIs one page at a time.
//!
//! Nothing here logs or returns a response body: bodies may be confidential.

use std::time::{Duration, Instant};

use backon::Retryable;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Certificate, Identity, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::manifest::{Auth, Paging, Transport};
use super::retry::RetryPolicy;
use crate::config::{AdapterConfig, Secret};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: HTTP {status}")]
    Status {
        url: String,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Transport(String),
    #[error("TLS failure: {0}")]
    Tls(String),
    #[error("{url}: the answer is not the JSON expected ({reason})")]
    Decode { url: String, reason: String },
    #[error("{url}: the answer exceeds {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: unauthorized even with a fresh token")]
    Unauthorized { url: String },
    #[error("{0}")]
    File(String),
}

impl FetchError {
    /// Whether trying again may help: server trouble, rate limits, timeouts,
    /// dropped connections and damaged answers. Never other 4xx, TLS
    /// refusals, oversized answers or refused credentials.
    pub fn is_retriable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                *status == 429 || *status == 408 || (500..600).contains(status)
            }
            FetchError::Transport(_) | FetchError::Decode { .. } => true,
            FetchError::Tls(_)
            | FetchError::TooLarge { .. }
            | FetchError::Unauthorized { .. }
            | FetchError::File(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A reqwest error with its causes, classified: a TLS refusal is final.
fn classify(e: reqwest::Error) -> FetchError {
    let mut text = e.to_string();
    let mut tls = false;
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let is_tls = cause.downcast_ref::<rustls::Error>().is_some()
            || cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        tls |= is_tls;
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    if tls {
        FetchError::Tls(text)
    } else {
        FetchError::Transport(text)
    }
}

struct Token {
    value: Secret,
    expires: Instant,
}

enum Authenticator {
    None,
    Header(HeaderName, HeaderValue),
    OAuth2 {
        token_url: String,
        client_id: Secret,
        client_secret: Secret,
        token: Mutex<Option<Token>>,
    },
}

/// One HTTP system, ready to be asked for pages.
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    auth: Authenticator,
    max_response: u64,
    retry: RetryPolicy,
}

fn sensitive(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value).map_err(|_| "a secret is not a valid header value")?;
    v.set_sensitive(true);
    Ok(v)
}

impl HttpSource {
    /// Builds the client and reads the secrets the manifest's auth names.
    pub fn new(
        transport: &Transport,
        auth: &Auth,
        config: &AdapterConfig,
        retry: RetryPolicy,
    ) -> Result<HttpSource, String> {
        let Transport::Http {
            timeout_secs,
            connect_timeout_secs,
            max_response_bytes,
            private_ca,
            client_certificate,
        } = transport
        else {
            return Err("not an HTTP transport".into());
        };
        let base = config
            .base_url
            .as_deref()
            .ok_or("base_url is not set")?
            .trim_end_matches('/')
            .to_owned();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(*timeout_secs))
            .connect_timeout(Duration::from_secs(*connect_timeout_secs))
            .user_agent(concat!("liankong/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.tls.ca {
            let pem = std::fs::read(ca).map_err(|e| format!("tls.ca {}: {e}", ca.display()))?;
            let certs = Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("tls.ca {}: {e}", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        } else if *private_ca {
            return Err("the system uses a private CA: set tls.ca".into());
        }
        match (&config.tls.client_cert, &config.tls.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert)
                    .map_err(|e| format!("tls.client_cert {}: {e}", cert.display()))?;
                pem.push(b'\n');
                pem.extend_from_slice(key.read()?.expose().as_bytes());
                let identity =
                    Identity::from_pem(&pem).map_err(|e| format!("client certificate: {e}"))?;
                builder = builder.identity(identity);
            }
            (None, None) if *client_certificate => {
                return Err(
                    "the system requires mutual TLS: set tls.client_cert and tls.client_key".into(),
                );
            }
            (None, None) => {}
            _ => return Err("set both tls.client_cert and tls.client_key, or neither".into()),
        }
        let secret = |name: &str| -> Result<Secret, String> {
            config
                .secrets
                .get(name)
                .ok_or_else(|| {
                    format!("the manifest needs the secret {name:?}: add it under secrets")
                })?
                .read()
        };
        let auth = match auth {
            Auth::None => Authenticator::None,
            Auth::ApiKey { header, secret: s } => Authenticator::Header(
                HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| format!("{header:?} is not a header name"))?,
                sensitive(secret(s)?.expose())?,
            ),
            Auth::Bearer { secret: s } => Authenticator::Header(
                reqwest::header::AUTHORIZATION,
                sensitive(&format!("Bearer {}", secret(s)?.expose()))?,
            ),
            Auth::Oauth2ClientCredentials {
                token_path,
                client_id,
                client_secret,
            } => Authenticator::OAuth2 {
                token_url: format!("{base}{token_path}"),
                client_id: secret(client_id)?,
                client_secret: secret(client_secret)?,
                token: Mutex::new(None),
            },
        };
        Ok(HttpSource {
            client: builder.build().map_err(|e| classify(e).to_string())?,
            base,
            auth,
            max_response: *max_response_bytes,
            retry,
        })
    }

    /// GETs one page as JSON, retrying what is worth retrying.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Value, FetchError> {
        let url = format!("{}{}", self.base, path);
        let attempt = || self.get_once(&url, query);
        attempt
            .retry(self.retry.backoff())
            .when(FetchError::is_retriable)
            .adjust(|e, backoff| self.retry.adjust(e.retry_after(), backoff))
            .notify(|e, wait| tracing::warn!(url = %url, error = %e, wait_ms = wait.as_millis() as u64, "retrying"))
            .await
    }

    async fn get_once(&self, url: &str, query: &[(String, String)]) -> Result<Value, FetchError> {
        let mut refreshed = false;
        loop {
            let mut request = self.client.get(url).query(query);
            match &self.auth {
                Authenticator::None => {}
                Authenticator::Header(name, value) => {
                    request = request.header(name.clone(), value.clone());
                }
                Authenticator::OAuth2 { .. } => {
                    request = request.header(
                        reqwest::header::AUTHORIZATION,
                        sensitive(&format!("Bearer {}", self.token().await?.expose()))
                            .map_err(FetchError::Transport)?,
                    );
                }
            }
            let response = request.send().await.map_err(classify)?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                if matches!(self.auth, Authenticator::OAuth2 { .. }) && !refreshed {
                    // The token expired before it said it would: one fresh try.
                    self.drop_token().await;
                    refreshed = true;
                    continue;
                }
                return Err(FetchError::Unauthorized {
                    url: url.to_owned(),
                });
            }
            return self.read_json(url, response).await;
        }
    }

    async fn read_json(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<Value, FetchError> {
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                retry_after: retry_after(response.headers()),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit: self.max_response,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if (body.len() + chunk.len()) as u64 > self.max_response {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::Decode {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The current OAuth2 token, fetched when missing or expired.
    async fn token(&self) -> Result<Secret, FetchError> {
        let Authenticator::OAuth2 {
            token_url,
            client_id,
            client_secret,
            token,
        } = &self.auth
        else {
            return Err(FetchError::Transport("no OAuth2 configured".into()));
        };
        let mut slot = token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| Instant::now() < t.expires) {
            return Ok(t.value.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.expose()),
            ("client_secret", client_secret.expose()),
        ];
        let response = self
            .client
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(classify)?;
        let answer = self.read_json(token_url, response).await?;
        let value = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Decode {
                url: token_url.clone(),
                reason: "no access_token".into(),
            })?;
        let lifetime = answer
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(300);
        // Renew a little early rather than send a token in its last second.
        let expires = Instant::now() + Duration::from_secs(lifetime.saturating_sub(30).max(1));
        let value = Secret::new(value);
        *slot = Some(Token {
            value: value.clone(),
            expires,
        });
        Ok(value)
    }

    async fn drop_token(&self) {
        if let Authenticator::OAuth2 { token, .. } = &self.auth {
            *token.lock().await = None;
        }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Walks the pages of one stream.
pub struct Pager<'a> {
    source: &'a HttpSource,
    paging: &'a Paging,
    path: String,
    /// Parameters every request carries (the incremental mark).
    fixed: Vec<(String, String)>,
    position: Position,
    finished: bool,
    received: u64,
    total: Option<u64>,
}

enum Position {
    Cursor(Option<String>),
    Page(u64),
    Offset(u64),
    Single,
}

impl<'a> Pager<'a> {
    pub fn new(
        source: &'a HttpSource,
        paging: &'a Paging,
        path: &str,
        fixed: Vec<(String, String)>,
    ) -> Pager<'a> {
        let position = match paging {
            Paging::None => Position::Single,
            Paging::Cursor { .. } => Position::Cursor(None),
            Paging::PageNumber { .. } => Position::Page(1),
            Paging::Offset { .. } => Position::Offset(0),
        };
        Pager {
            source,
            paging,
            path: path.to_owned(),
            fixed,
            position,
            finished: false,
            received: 0,
            total: None,
        }
    }

    /// Whether the pages received add up to what the source announced.
    pub fn complete(&self) -> bool {
        self.finished && self.total.is_none_or(|t| t == self.received)
    }

    /// The next page's rows; `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, FetchError> {
        if self.finished {
            return Ok(None);
        }
        let mut query = self.fixed.clone();
        let s = |v: &dyn ToString| v.to_string();
        match (self.paging, &self.position) {
            (
                Paging::Cursor {
                    cursor_param,
                    limit_param,
                    limit,
                    ..
                },
                Position::Cursor(c),
            ) => {
                query.push((limit_param.clone(), s(limit)));
                if let Some(c) = c {
                    query.push((cursor_param.clone(), c.clone()));
                }
            }
            (
                Paging::PageNumber {
                    page_param,
                    size_param,
                    size,
                    ..
                },
                Position::Page(p),
            ) => {
                query.push((page_param.clone(), s(p)));
                query.push((size_param.clone(), s(size)));
            }
            (
                Paging::Offset {
                    offset_param,
                    limit_param,
                    limit,
                    ..
                },
                Position::Offset(o),
            ) => {
                query.push((offset_param.clone(), s(o)));
                query.push((limit_param.clone(), s(limit)));
            }
            _ => {}
        }
        let mut answer = self.source.get_json(&self.path, &query).await?;
        let decode = |reason: String| FetchError::Decode {
            url: format!("{}{}", self.source.base, self.path),
            reason,
        };
        let rows = match self.paging {
            Paging::None => match &mut answer {
                Value::Array(rows) => std::mem::take(rows),
                _ => return Err(decode("expected an array".into())),
            },
            Paging::Cursor { records, .. }
            | Paging::PageNumber { records, .. }
            | Paging::Offset { records, .. } => match answer.get_mut(records) {
                Some(Value::Array(rows)) => std::mem::take(rows),
                _ => return Err(decode(format!("no array {records:?}"))),
            },
        };
        self.received += rows.len() as u64;
        let n = rows.len() as u64;
        match (self.paging, &mut self.position) {
            (Paging::Cursor { next_cursor, .. }, Position::Cursor(c)) => {
                match answer.get(next_cursor).and_then(Value::as_str) {
                    Some(next) if !next.is_empty() && (n > 0 || c.as_deref() != Some(next)) => {
                        *c = Some(next.to_owned());
                    }
                    _ => self.finished = true,
                }
            }
            (Paging::PageNumber { total, .. }, Position::Page(p)) => {
                if let Some(field) = total {
                    self.total = answer.get(field).and_then(Value::as_u64);
                }
                *p += 1;
                if n == 0 || self.total.is_some_and(|t| self.received >= t) {
                    self.finished = true;
                }
            }
            (Paging::Offset { has_more, .. }, Position::Offset(o)) => {
                *o += n;
                let more = answer
                    .get(has_more)
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if !more || n == 0 {
                    self.finished = true;
                }
            }
            _ => self.finished = true,
        }
        Ok(Some(rows))
    }
}
