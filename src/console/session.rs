//! Console sessions, kept in memory: a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` over TLS) names the person signed in
//! with a personal token, its CSRF token, and when it was last used. A
//! session ends when it has been idle for `api.session_idle_minutes`, when
//! its token leaves the config, at sign-out, and at a restart (nothing of
//! it is stored).
//!
//! Failed sign-ins are counted per client address: after `n` consecutive
//! failures the address must wait `2^(n-1)` seconds (at most five minutes)
//! before its next try, and a try that comes sooner is answered 429 with
//! `Retry-After`, whatever the token it brings.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::extract::connect_info::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};

use crate::config::{ApiConfig, ApiToken};
use crate::model::Agency;

/// The session cookie.
pub const SESSION_COOKIE: &str = "lk_session";
/// The sign-in form's own CSRF cookie (double submit: there is no session
/// yet to keep its token in).
pub const SIGNIN_COOKIE: &str = "lk_signin";

/// The longest wait between two sign-in tries from one address.
pub const MAX_WAIT: Duration = Duration::minutes(5);
/// An address's failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::hours(1);

/// No secure random source: nothing can be signed in.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no secure random source")]
pub struct NoRandom;

/// 32 random bytes, hex.
pub fn random_token() -> Result<String, NoRandom> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| NoRandom)?;
    Ok(hex::encode(bytes))
}

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub agency: Agency,
    /// The name of the personal token (`liankong token --name`).
    pub name: String,
    /// The token's sha-256 as configured: the session lives only while it
    /// is configured.
    pub token_hash: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    pub last_seen: DateTime<Utc>,
}

/// What a session cookie leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Live(Session),
    /// It was, and has been idle too long.
    Expired,
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: DateTime<Utc>,
}

/// The sessions and the failed sign-ins of one server.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long an address waits after `count` consecutive failures.
pub fn wait_after(count: u32) -> Duration {
    if count == 0 {
        return Duration::zero();
    }
    let seconds = 1i64 << count.saturating_sub(1).min(16);
    Duration::seconds(seconds).min(MAX_WAIT)
}

impl Sessions {
    /// Signs `token`'s holder in; returns the new session's id. Sessions
    /// idle longer than `idle` are dropped on the way.
    pub fn open(
        &self,
        token: &ApiToken,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<String, NoRandom> {
        let id = random_token()?;
        let session = Session {
            agency: token.agency,
            name: token.name.clone(),
            token_hash: token.sha256.to_ascii_lowercase(),
            csrf: random_token()?,
            last_seen: now,
        };
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| now - s.last_seen <= idle);
        sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// The session `id` names, used now (its idle time starts again).
    pub fn find(&self, id: &str, now: DateTime<Utc>, idle: Duration) -> Lookup {
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(id) {
            None => Lookup::Unknown,
            Some(s) if now - s.last_seen > idle => {
                sessions.remove(id);
                Lookup::Expired
            }
            Some(s) => {
                s.last_seen = s.last_seen.max(now);
                Lookup::Live(s.clone())
            }
        }
    }

    pub fn close(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// How many sessions are open (live or not yet swept).
    pub fn open_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Whether `ip` may try to sign in now; if not, how long it must wait.
    pub fn may_try(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), Duration> {
        let failures = lock(&self.failures);
        match failures.get(&ip) {
            Some(f) if now < f.last + wait_after(f.count) => {
                Err(f.last + wait_after(f.count) - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed sign-in from `ip`; returns the wait it now faces.
    pub fn failed(&self, ip: IpAddr, now: DateTime<Utc>) -> Duration {
        let mut failures = lock(&self.failures);
        failures.retain(|_, f| now - f.last < FORGET_AFTER);
        let f = failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count = f.count.saturating_add(1);
        f.last = now;
        wait_after(f.count)
    }

    /// A sign-in from `ip` succeeded: its count starts again.
    pub fn succeeded(&self, ip: IpAddr) {
        lock(&self.failures).remove(&ip);
    }
}

/// The value of the cookie `name` the request carries.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// The address the request came from, and whether it came over TLS: the
/// peer's, unless the peer is a trusted proxy, whose `X-Forwarded-For`
/// (its rightmost address that is not a trusted proxy) and
/// `X-Forwarded-Proto` are believed.
pub fn client(parts: &Parts, api: &ApiConfig, tls: bool) -> (IpAddr, bool) {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if !api.trusted_proxies.contains(&peer) {
        return (peer, tls);
    }
    let header = |name: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let forwarded = header("x-forwarded-for");
    let ip = forwarded
        .split(',')
        .rev()
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .find(|a| !api.trusted_proxies.contains(a))
        .unwrap_or(peer);
    let https = tls
        || header("x-forwarded-proto")
            .split(',')
            .next_back()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    (ip, https)
}

/// A `Set-Cookie` value for the console's cookies.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> ApiToken {
        ApiToken {
            name: "王科长".into(),
            agency: Agency::Finance,
            sha256: "AB".repeat(32),
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_633_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn a_session_lives_while_it_is_used_and_ends_when_idle() {
        let s = Sessions::default();
        let idle = Duration::minutes(30);
        let id = s.open(&token(), at(0), idle).unwrap();
        assert_eq!(id.len(), 64);
        let Lookup::Live(live) = s.find(&id, at(29), idle) else {
            panic!("live")
        };
        assert_eq!(
            (live.agency, live.name.as_str()),
            (Agency::Finance, "王科长")
        );
        assert_eq!(live.token_hash, "ab".repeat(32));
        // Used at 29 minutes: idle again from then.
        assert!(matches!(s.find(&id, at(59), idle), Lookup::Live(_)));
        assert_eq!(s.find(&id, at(90), idle), Lookup::Expired);
        assert_eq!(s.find(&id, at(91), idle), Lookup::Unknown);
        let other = s.open(&token(), at(100), idle).unwrap();
        s.close(&other);
        assert_eq!(s.find(&other, at(100), idle), Lookup::Unknown);
    }

    #[test]
    fn failures_make_an_address_wait_longer_each_time() {
        let s = Sessions::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = at(0);
        assert_eq!(s.may_try(ip, t0), Ok(()));
        assert_eq!(s.failed(ip, t0), Duration::seconds(1));
        assert_eq!(s.may_try(ip, t0), Err(Duration::seconds(1)));
        assert_eq!(s.may_try(other, t0), Ok(()), "per address");
        let t1 = t0 + Duration::seconds(1);
        assert_eq!(s.may_try(ip, t1), Ok(()));
        assert_eq!(s.failed(ip, t1), Duration::seconds(2));
        assert_eq!(s.failed(ip, t1), Duration::seconds(4));
        assert_eq!(
            s.may_try(ip, t1 + Duration::seconds(3)),
            Err(Duration::seconds(1))
        );
        for _ in 0..20 {
            s.failed(ip, t1);
        }
        assert_eq!(s.may_try(ip, t1), Err(MAX_WAIT));
        s.succeeded(ip);
        assert_eq!(s.may_try(ip, t1), Ok(()));
        assert_eq!(wait_after(0), Duration::zero());
        assert_eq!(wait_after(9), Duration::seconds(256));
        assert_eq!(wait_after(10), MAX_WAIT);
    }

    #[test]
    fn cookies_say_what_the_console_needs() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "abc", true, None),
            "lk_session=abc; Path=/ui; HttpOnly; SameSite=Strict; Secure"
        );
        assert_eq!(
            set_cookie(SESSION_COOKIE, "", false, Some(0)),
            "lk_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        let (mut parts, ()) = axum::http::Request::builder()
            .header("cookie", "a=1; lk_session=xyz ; b=2")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(cookie(&parts, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&parts, "c"), None);

        // Only a trusted proxy's forwarding headers are believed.
        let proxy: SocketAddr = "10.0.0.1:4431".parse().unwrap();
        parts.extensions.insert(ConnectInfo(proxy));
        parts
            .headers
            .insert("x-forwarded-for", "198.51.100.9, 10.0.0.1".parse().unwrap());
        parts
            .headers
            .insert("x-forwarded-proto", "https".parse().unwrap());
        let mut api = ApiConfig::default();
        assert_eq!(client(&parts, &api, false), (proxy.ip(), false));
        api.trusted_proxies = vec![proxy.ip()];
        assert_eq!(
            client(&parts, &api, false),
            ("198.51.100.9".parse().unwrap(), true)
        );
    }
}
