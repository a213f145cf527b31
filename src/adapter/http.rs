//! The HTTP transport: a client per adapter (timeouts, private CA, client
//! certificate), request authentication (API key, bearer, OAuth2 client
//! credentials with a refresh on 401), retries of each page, and the pagers
//! that walk cursor, page-number and offset APIs one page at a time.
//!
//! Nothing here logs or returns a response body: bodies may be confidential.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use backon::Retryable;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Certificate, Identity, StatusCode};
use serde_json::Value;
use tokio::sync::Mutex;

use super::Unbuildable;
use super::manifest::{Auth, Paging, Transport};
use super::retry::RetryPolicy;
use crate::clock::{Clock, SystemClock};
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
    /// An answer that cannot be read faithfully (a key given twice): the
    /// same bytes would come again, so it is never retried.
    #[error("{url}: the answer is refused whole ({reason})")]
    Ambiguous { url: String, reason: String },
    #[error("{url}: the answer exceeds {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: the paging never ends ({reason}); nothing of this run is kept")]
    Endless { url: String, reason: String },
    /// HTTP 401 that a retry cannot mend; `refused` names the credential.
    #[error("{url}: HTTP 401: {refused}")]
    Unauthorized { url: String, refused: String },
    #[error(
        "{url}: HTTP {status} with Retry-After {wait_secs} s, longer than \
         sync.max_retry_after_secs ({max_secs} s): not waiting; the next run tries again"
    )]
    WaitTooLong {
        url: String,
        status: u16,
        wait_secs: u64,
        max_secs: u64,
    },
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
            | FetchError::Ambiguous { .. }
            | FetchError::TooLarge { .. }
            | FetchError::Endless { .. }
            | FetchError::Unauthorized { .. }
            | FetchError::WaitTooLong { .. }
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

/// Whether `e` is a rustls error, perhaps inside I/O errors: hyper's
/// connector wraps the handshake's error in an `io::Error` (twice, as of
/// reqwest 0.13), and an `io::Error`'s `source` skips what it wraps.
fn is_rustls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| is_rustls(inner))
}

/// A reqwest error with its causes, classified: a TLS refusal is final.
fn classify(e: reqwest::Error) -> FetchError {
    let mut text = e.to_string();
    let mut tls = false;
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        tls |= is_rustls(cause);
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
        /// What the token endpoint's 401 means, for the operator.
        credentials_refused: String,
    },
}

/// One HTTP system, ready to be asked for pages.
pub struct HttpSource {
    client: reqwest::Client,
    base: String,
    auth: Authenticator,
    /// What a 401 means with this auth, for the operator.
    refused: String,
    max_response: u64,
    retry: RetryPolicy,
}

fn sensitive(value: &str) -> Result<HeaderValue, Unbuildable> {
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
    ) -> Result<HttpSource, Unbuildable> {
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
            check_ca_bundle(&pem).map_err(|e| format!("tls.ca {}: {e}", ca.display()))?;
            let certs = Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("tls.ca {}: {}", ca.display(), classify(e)))?;
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
                let identity = Identity::from_pem(&pem).map_err(|e| {
                    format!(
                        "tls.client_cert {} with tls.client_key {key}: {}",
                        cert.display(),
                        classify(e)
                    )
                })?;
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
        let secret = |name: &str| -> Result<Secret, Unbuildable> {
            Ok(config
                .secrets
                .get(name)
                .ok_or_else(|| {
                    format!("the manifest needs the secret {name:?}: add it under secrets")
                })?
                .read()?)
        };
        let refused = refusal(auth);
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
                credentials_refused: format!(
                    "the token endpoint refused the client credentials (secrets {client_id:?} and {client_secret:?})"
                ),
            },
        };
        let tls = config.tls.ca.is_some() || config.tls.client_cert.is_some();
        Ok(HttpSource {
            client: builder.build().map_err(|e| match tls {
                true => format!("the tls settings do not go together: {}", classify(e)),
                false => classify(e).to_string(),
            })?,
            base,
            auth,
            refused,
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
                            .map_err(|e| FetchError::Transport(e.0))?,
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
                    refused: self.refused.clone(),
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
            let retry_after = crate::backoff::retry_after(response.headers(), SystemClock.now());
            let max = self.retry.max_retry_after;
            if let Some(wait) = retry_after.filter(|w| *w > max) {
                return Err(FetchError::WaitTooLong {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    wait_secs: wait.as_secs(),
                    max_secs: max.as_secs(),
                });
            }
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                retry_after,
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
        decode_body(url, &body)
    }

    /// The current OAuth2 token, fetched when missing or expired.
    async fn token(&self) -> Result<Secret, FetchError> {
        let Authenticator::OAuth2 {
            token_url,
            client_id,
            client_secret,
            token,
            credentials_refused,
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
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(FetchError::Unauthorized {
                url: token_url.clone(),
                refused: credentials_refused.clone(),
            });
        }
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

/// An answer's body as JSON. A body cut short is a decode error, which is
/// retried.
fn decode_body(url: &str, body: &[u8]) -> Result<Value, FetchError> {
    // A key given twice in an answer would re-key or change a row silently:
    // a data error, where damage (a cut body) is a syntax error.
    super::json::from_slice(body).map_err(|e| {
        let (url, reason) = (url.to_owned(), e.to_string());
        if e.is_data() {
            FetchError::Ambiguous { url, reason }
        } else {
            FetchError::Decode { url, reason }
        }
    })
}

/// Parses every certificate of a CA bundle as the client will, so that
/// `check` refuses what every run would: a bundle with no certificate (a
/// client that trusts nobody) or one that is not a certificate at all.
fn check_ca_bundle(pem: &[u8]) -> Result<(), Unbuildable> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for (i, der) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let n = i + 1;
        let der = der.map_err(|e| format!("certificate {n}: {e}"))?;
        roots
            .add(der)
            .map_err(|e| format!("certificate {n}: {e}"))?;
    }
    if roots.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(())
}

/// What a 401 says about the credential `auth` sends.
fn refusal(auth: &Auth) -> String {
    match auth {
        Auth::None => "the source wants credentials; the manifest's auth sends none".into(),
        Auth::ApiKey { header, secret } => {
            format!("the source refused the API key sent in {header} (secret {secret:?})")
        }
        Auth::Bearer { secret } => {
            format!("the source refused the bearer token (secret {secret:?})")
        }
        Auth::Oauth2ClientCredentials { .. } => {
            "the source refused a fresh OAuth2 token from its own token endpoint".into()
        }
    }
}

/// Walks the pages of one stream.
pub struct Pager<'a> {
    source: &'a HttpSource,
    path: String,
    /// Parameters every request carries (the incremental mark).
    fixed: Vec<(String, String)>,
    walk: PageWalk<'a>,
}

impl<'a> Pager<'a> {
    pub fn new(
        source: &'a HttpSource,
        paging: &'a Paging,
        path: &str,
        fixed: Vec<(String, String)>,
    ) -> Pager<'a> {
        Pager {
            source,
            path: path.to_owned(),
            fixed,
            walk: PageWalk::new(paging),
        }
    }

    /// Whether the pages received add up to what the source announced.
    pub fn complete(&self) -> bool {
        self.walk.complete()
    }

    /// The next page's rows; `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, FetchError> {
        if self.walk.finished {
            return Ok(None);
        }
        let mut query = self.fixed.clone();
        query.extend(self.walk.query());
        let answer = self.source.get_json(&self.path, &query).await?;
        let url = || format!("{}{}", self.source.base, self.path);
        let rows = self.walk.take(answer).map_err(|e| match e {
            Refused::Malformed(reason) => FetchError::Decode { url: url(), reason },
            Refused::Endless(reason) => FetchError::Endless { url: url(), reason },
        })?;
        Ok(Some(rows))
    }
}

/// Where a walk over the pages of one stream stands, and what each decoded
/// answer means for it: the paging without the network.
#[derive(Debug)]
struct PageWalk<'a> {
    paging: &'a Paging,
    position: Position,
    finished: bool,
    received: u64,
    total: Option<u64>,
    pages: u64,
    /// Digests of the cursors handed out so far: one that comes back means
    /// the walk goes round in a circle.
    cursors: HashSet<u64>,
    /// The last page's size with its first and last rows, and how many pages
    /// in a row were the same: a source that ignores the page or offset sends
    /// one page for ever.
    last_page: Option<(usize, Value, Value)>,
    same_pages: u32,
}

/// Why an answer moves the walk no further.
#[derive(Debug, PartialEq)]
enum Refused {
    /// The answer is not the shape the manifest describes.
    Malformed(String),
    /// Following it would never end.
    Endless(String),
}

/// Pages the same as the one before that mean the source repeats itself.
/// One repeat can be honest (a row inserted ahead shifts a one-row page);
/// two in a row are not.
const SAME_PAGES_TOLERATED: u32 = 1;

fn cursor_digest(cursor: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cursor.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Cursor(Option<String>),
    Page(u64),
    Offset(u64),
    Single,
}

impl<'a> PageWalk<'a> {
    fn new(paging: &'a Paging) -> PageWalk<'a> {
        let position = match paging {
            Paging::None => Position::Single,
            Paging::Cursor { .. } => Position::Cursor(None),
            Paging::PageNumber { .. } => Position::Page(1),
            Paging::Offset { .. } => Position::Offset(0),
        };
        PageWalk {
            paging,
            position,
            finished: false,
            received: 0,
            total: None,
            pages: 0,
            cursors: HashSet::new(),
            last_page: None,
            same_pages: 0,
        }
    }

    fn complete(&self) -> bool {
        self.finished && self.total.is_none_or(|t| t == self.received)
    }

    /// The paging parameters of the next request.
    fn query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
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
        query
    }

    /// Takes the rows out of one answer and moves past it. An answer without
    /// its array of rows, or one that would send the walk round for ever, is
    /// refused and leaves the walk where it was.
    fn take(&mut self, mut answer: Value) -> Result<Vec<Value>, Refused> {
        let rows = match self.paging {
            Paging::None => match &mut answer {
                Value::Array(rows) => std::mem::take(rows),
                _ => return Err(Refused::Malformed("expected an array".into())),
            },
            Paging::Cursor { records, .. }
            | Paging::PageNumber { records, .. }
            | Paging::Offset { records, .. } => match answer.get_mut(records) {
                Some(Value::Array(rows)) => std::mem::take(rows),
                _ => return Err(Refused::Malformed(format!("no array {records:?}"))),
            },
        };
        let n = rows.len() as u64;
        let pages = self.pages + 1;
        // Where the walk would go next, checked before anything moves.
        let next_cursor = match (self.paging, &self.position) {
            (Paging::Cursor { next_cursor, .. }, Position::Cursor(c)) => {
                match answer.get(next_cursor).and_then(Value::as_str) {
                    Some(next) if !next.is_empty() && (n > 0 || c.as_deref() != Some(next)) => {
                        let digest = cursor_digest(next);
                        if self.cursors.contains(&digest) {
                            return Err(Refused::Endless(format!(
                                "page {pages} hands out cursor {next:?} again"
                            )));
                        }
                        Some((next.to_owned(), digest))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let page = match (rows.first(), rows.last()) {
            (Some(first), Some(last)) => Some((rows.len(), first.clone(), last.clone())),
            _ => None,
        };
        let same_pages = match (&page, &self.last_page) {
            (Some(page), Some(last)) if page == last => self.same_pages + 1,
            _ => 0,
        };
        if same_pages > SAME_PAGES_TOLERATED {
            return Err(Refused::Endless(format!(
                "page {pages} is the same as the {same_pages} before it"
            )));
        }
        self.pages = pages;
        self.last_page = page;
        self.same_pages = same_pages;
        self.received += n;
        match (self.paging, &mut self.position) {
            (Paging::Cursor { .. }, Position::Cursor(c)) => match next_cursor {
                Some((next, digest)) => {
                    self.cursors.insert(digest);
                    *c = Some(next);
                }
                None => self.finished = true,
            },
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
        Ok(rows)
    }
}

#[cfg(test)]
mod props {
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
            Paging::PageNumber { records, total, .. } => {
                [Some(records), None, total.as_ref(), None]
            }
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
}

#[cfg(test)]
mod tests {
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
}
