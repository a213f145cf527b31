//! The console's shared state, and the two extractors every page and form
//! goes through: [`Clerk`] (a live session, else to the sign-in page) and
//! [`Posted`] (a clerk and a form whose CSRF token is the session's, else
//! 403).

use std::sync::Arc;

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::layout;
use super::session::{Lookup, SESSION_COOKIE, Sessions, client, cookie};
use crate::api::ApiState;
use crate::model::Agency;

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    pub api: ApiState,
    pub sessions: Arc<Sessions>,
    /// liankong terminates TLS itself.
    pub tls: bool,
}

impl Console {
    pub fn idle(&self) -> Duration {
        // A century at most: chrono's durations have bounds.
        let minutes = self.api.config.borrow().api.session_idle_minutes;
        Duration::minutes(i64::try_from(minutes.min(100 * 366 * 24 * 60)).unwrap_or(0))
    }
}

/// A person signed in: the agency, the name of the personal token, and the
/// session's CSRF token for the forms of the page.
#[derive(Debug, Clone)]
pub struct Clerk {
    pub agency: Agency,
    pub name: String,
    pub csrf: String,
    pub session: String,
    /// The request came over TLS (here or at a trusted proxy): cookies
    /// set in answer are `Secure`.
    pub secure: bool,
}

impl FromRequestParts<Console> for Clerk {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Clerk, Redirect> {
        let Some(id) = cookie(parts, SESSION_COOKIE) else {
            return Err(Redirect::to("/ui/signin"));
        };
        let now = state.api.clock.now();
        match state.sessions.find(id, now, state.idle()) {
            Lookup::Live(s) => {
                let config = state.api.config.borrow().clone();
                // A token taken out of the config (or moved to another
                // agency) ends its sessions at their next request.
                if crate::api::configured_hash(&config, &s.token_hash)
                    .is_none_or(|t| t.agency != s.agency)
                {
                    state.sessions.close(id);
                    return Err(Redirect::to("/ui/signin"));
                }
                Ok(Clerk {
                    agency: s.agency,
                    name: s.name,
                    csrf: s.csrf,
                    session: id.to_owned(),
                    secure: client(parts, &config.api, state.tls).1,
                })
            }
            Lookup::Expired => Err(Redirect::to("/ui/signin?expired=1")),
            Lookup::Unknown => Err(Redirect::to("/ui/signin")),
        }
    }
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// A form posted by a clerk, its CSRF token checked. The form's fields are
/// strings (a flattened urlencoded form reads nothing else).
pub struct Posted<T> {
    pub clerk: Clerk,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Console> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Console) -> Result<Posted<T>, Response> {
        let (mut parts, body) = req.into_parts();
        let clerk = Clerk::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let req = Request::from_parts(parts, body);
        let Form(posted) = Form::<WithCsrf<T>>::from_request(req, state)
            .await
            .map_err(|e| {
                layout::problem(
                    Some(&clerk),
                    StatusCode::BAD_REQUEST,
                    "表单有误",
                    &e.body_text(),
                )
            })?;
        if !crate::api::same(posted.csrf.as_bytes(), clerk.csrf.as_bytes()) {
            return Err(layout::problem(
                Some(&clerk),
                StatusCode::FORBIDDEN,
                "表单已失效",
                "这个表单不是本次登录的页面提交的（CSRF 校验未通过）。请回到页面刷新后重试。",
            ));
        }
        Ok(Posted {
            clerk,
            form: posted.form,
        })
    }
}
