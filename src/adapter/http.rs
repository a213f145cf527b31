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
        // Parsed on a blocking thread: a page of thousands of rows is the
        // largest piece of CPU work of a run, and this task's thread is
        // the one that prepares the store's writes.
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || decode_body(&url, &body))
            .await
            .map_err(|e| FetchError::Transport(format!("the decoder stopped: {e}")))?
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
mod props;

#[cfg(test)]
mod tests;
