//! Taking an action: the request as the API and the CLI give it, every
//! refusal of `RULES.md` § Actions ([`decide`], a pure function of the
//! request and what the store knows), and recording what is not refused
//! with its events in one transaction ([`take`]).

use chrono::{DateTime, Datelike, Duration, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ledger;
use super::view;
use crate::config::china_time;
use crate::deliver::Subscriber;
use crate::model::{Action, ActionKind, Agency, Collection, ProjectCode, Record};
use crate::money::Fen;
use crate::reconcile::rules::yuan;
use crate::store::actions::{ProjectPosition, Remembered};
use crate::store::alerts::AlertRow;
use crate::store::{Batch, Item, RunId, Store, StoreError};

/// How long an `Idempotency-Key` keeps its first answer.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// Who takes an action: the agency and the name of the token it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub agency: Agency,
    /// The token's name (`cli` from the command line).
    pub token: String,
}

/// An action as asked for. Money is yuan as a string (`"1250.00"`), never a
/// JSON number; days are `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "reclaim", "by": "王科长", "project": "3701002021990009",
    "year": 2021, "taken_on": "2021-09-05", "amount": "10000.00", "reason": "收回结余资金"}))]
pub struct ActionRequest {
    pub kind: ActionKind,
    /// The person taking it.
    pub by: String,
    /// The project's 16-digit code (not for `withdraw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The budget year (not for `withdraw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    /// The day it was taken; today (China time) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_on: Option<NaiveDate>,
    /// `warn`: the alert's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// `reclaim`, `revive`: yuan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// `revive`: the reclaims it draws on, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    /// `freeze`, `unfreeze`: the day it takes effect (`taken_on` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_on: Option<NaiveDate>,
    /// `warn`: the day the unit must answer by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<NaiveDate>,
    /// `withdraw`: the action it takes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub reason: String,
}

impl ActionRequest {
    /// A request of `kind` by `by` for `reason`, every other field absent.
    pub fn new(kind: ActionKind, by: &str, reason: &str) -> ActionRequest {
        ActionRequest {
            kind,
            by: by.to_owned(),
            project: None,
            year: None,
            taken_on: None,
            alert: None,
            amount: None,
            from: None,
            effective_on: None,
            deadline: None,
            action: None,
            reason: reason.to_owned(),
        }
    }
}

/// The HTTP status a refusal answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RefusalStatus {
    /// 403: the agency may not take that kind, or withdraw that action.
    Forbidden,
    /// 404: no such alert (or none the caller may warn about), no such action.
    NotFound,
    /// 409: the project's or the alert's state forbids it now.
    Conflict,
    /// 422: the request's own figures or days are wrong.
    Unprocessable,
}

impl RefusalStatus {
    pub fn code(self) -> u16 {
        match self {
            RefusalStatus::Forbidden => 403,
            RefusalStatus::NotFound => 404,
            RefusalStatus::Conflict => 409,
            RefusalStatus::Unprocessable => 422,
        }
    }
}

/// Why an action is refused: nothing was recorded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub status: RefusalStatus,
    /// A word a program can match (`reclaim_above_balance`, …).
    pub reason: &'static str,
    /// The sentence a person reads, with the figures.
    pub message: String,
    /// The figures the refusal rests on; money as yuan strings.
    pub figures: Value,
}

impl Refusal {
    fn new(
        status: RefusalStatus,
        reason: &'static str,
        message: String,
        figures: Value,
    ) -> Refusal {
        Refusal {
            status,
            reason,
            message,
            figures,
        }
    }

    /// The JSON body of the refusal.
    pub fn body(&self) -> Value {
        json!({"error": self.message, "reason": self.reason, "figures": self.figures})
    }
}

use RefusalStatus::{Conflict, Forbidden, NotFound, Unprocessable};

/// Why taking an action failed.
#[derive(Debug, thiserror::Error)]
pub enum TakeError {
    #[error("refused ({code}): {0}", code = .0.status.code())]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for TakeError {
    fn from(r: Refusal) -> TakeError {
        TakeError::Refused(r)
    }
}

/// An action recorded, or the first answer under the same key.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub action_id: String,
    /// The action as the answer shows it.
    pub answer: Value,
    /// The first answer again (an `Idempotency-Key` seen within 24 hours):
    /// nothing was recorded now.
    pub replayed: bool,
    /// Outbox events written.
    pub events: usize,
}

/// Who may take each kind (`RULES.md`); any agency may withdraw its own.
pub fn may_take(agency: Agency, kind: ActionKind) -> bool {
    match kind {
        ActionKind::Warn => agency != Agency::Discipline,
        ActionKind::Freeze | ActionKind::Unfreeze | ActionKind::Reclaim | ActionKind::Revive => {
            agency == Agency::Finance
        }
        ActionKind::Withdraw => true,
    }
}

fn takers(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Warn => "finance, npc, audit or orgdept",
        ActionKind::Withdraw => "the agency that took the action",
        _ => "finance",
    }
}

/// What the store knows that an action's refusals read.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Today in China time: no action is taken later.
    pub today: NaiveDate,
    /// Every recorded action, withdrawals included.
    pub actions: &'a [Action],
    /// `warn`: the alert it names, if the store has it.
    pub alert: Option<&'a AlertRow>,
    /// The project's standing on the day taken, if the request names a
    /// readable project and a year.
    pub position: Option<&'a ProjectPosition>,
}

fn unprocessable(reason: &'static str, message: String, figures: Value) -> Refusal {
    Refusal::new(Unprocessable, reason, message, figures)
}

/// The 404 of a warning about an alert the caller may not warn about: the
/// same whether it is confidential, not the caller's, or absent.
fn no_alert(id: &str) -> Refusal {
    Refusal::new(
        NotFound,
        "no_such_alert",
        format!("no alert {id}"),
        json!({"alert": id}),
    )
}

fn no_action(id: &str) -> Refusal {
    Refusal::new(
        NotFound,
        "no_such_action",
        format!("no action {id}"),
        json!({"action": id}),
    )
}

/// The fields each kind takes, and those it must have.
fn fields(kind: ActionKind) -> (&'static [&'static str], &'static [&'static str]) {
    use ActionKind::*;
    match kind {
        Warn => (
            &["project", "year", "alert", "deadline"],
            &["project", "year", "alert", "deadline"],
        ),
        Freeze | Unfreeze => (&["project", "year", "effective_on"], &["project", "year"]),
        Reclaim => (
            &["project", "year", "amount"],
            &["project", "year", "amount"],
        ),
        Revive => (
            &["project", "year", "amount", "from"],
            &["project", "year", "amount", "from"],
        ),
        Withdraw => (&["action"], &["action"]),
    }
}

fn present(req: &ActionRequest) -> Vec<&'static str> {
    [
        ("project", req.project.is_some()),
        ("year", req.year.is_some()),
        ("alert", req.alert.is_some()),
        ("amount", req.amount.is_some()),
        ("from", req.from.as_ref().is_some_and(|f| !f.is_empty())),
        ("effective_on", req.effective_on.is_some()),
        ("deadline", req.deadline.is_some()),
        ("action", req.action.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, there)| there.then_some(name))
    .collect()
}

/// Decides a request: the action to record, or why it is refused. Pure:
/// everything it reads is in `known`; `id` and `recorded_at` are the new
/// action's.
pub fn decide(
    actor: &Actor,
    req: &ActionRequest,
    known: &Known<'_>,
    id: String,
    recorded_at: DateTime<Utc>,
) -> Result<Action, Refusal> {
    let kind = req.kind;
    if !may_take(actor.agency, kind) {
        return Err(Refusal::new(
            Forbidden,
            "kind_not_allowed",
            format!(
                "{} may not take a {kind}: only {}",
                actor.agency,
                takers(kind)
            ),
            json!({"agency": actor.agency, "kind": kind}),
        ));
    }
    // A day is written with four digits (RFC 3339): another could be
    // recorded, but not answered nor delivered as the API describes it.
    for (name, day) in [
        ("taken_on", req.taken_on),
        ("effective_on", req.effective_on),
        ("deadline", req.deadline),
    ] {
        if let Some(d) = day.filter(|d| !(0..=9999).contains(&d.year())) {
            return Err(unprocessable(
                "day_out_of_range",
                format!("{name} {d} is not a day of the years 0000 to 9999"),
                json!({"field": name, "day": d}),
            ));
        }
    }
    let t = req.taken_on.unwrap_or(known.today);
    if t > known.today {
        return Err(unprocessable(
            "taken_in_future",
            format!("taken_on {t} is after today ({})", known.today),
            json!({"taken_on": t, "today": known.today}),
        ));
    }
    for (name, value) in [("by", &req.by), ("reason", &req.reason)] {
        if value.trim().is_empty() {
            return Err(unprocessable(
                "missing_field",
                format!("a {kind} needs {name}"),
                json!({"field": name}),
            ));
        }
    }
    let (allowed, required) = fields(kind);
    let given = present(req);
    if let Some(extra) = given.iter().find(|f| !allowed.contains(f)) {
        return Err(unprocessable(
            "field_not_for_kind",
            format!("a {kind} takes no {extra}"),
            json!({"field": extra, "kind": kind}),
        ));
    }
    if let Some(missing) = required.iter().find(|f| !given.contains(f)) {
        return Err(unprocessable(
            "missing_field",
            format!("a {kind} needs {missing}"),
            json!({"field": missing}),
        ));
    }
    let amount = match req.amount.as_deref() {
        None => None,
        Some(text) => {
            let a = Fen::from_yuan(text).map_err(|e| {
                unprocessable(
                    "bad_amount",
                    format!("amount {text:?}: {e}"),
                    json!({"amount": text}),
                )
            })?;
            if a.0 <= 0 {
                return Err(unprocessable(
                    "amount_not_positive",
                    format!("amount {} must be greater than zero", a.to_yuan()),
                    json!({"amount": yuan(a)}),
                ));
            }
            Some(a)
        }
    };
    let action_for = |project_code: ProjectCode, year: i32| Action {
        action_id: id.clone(),
        kind,
        agency: actor.agency,
        token: actor.token.clone(),
        by: req.by.trim().to_owned(),
        recorded_at: recorded_at.trunc_subsecs(6),
        taken_on: t,
        project_code,
        year,
        alert_id: None,
        deadline: None,
        effective_on: None,
        amount,
        from: Vec::new(),
        withdraws: None,
        reason: req.reason.trim().to_owned(),
    };
    if kind == ActionKind::Withdraw {
        return decide_withdraw(actor, req, known, t, action_for);
    }

    // A warning about an alert the caller may not warn about is refused
    // before anything about the project is said.
    let alert = if kind == ActionKind::Warn {
        let id = req.alert.as_deref().unwrap_or_default();
        let alert = known
            .alert
            .filter(|a| a.id == id)
            .filter(|a| !a.finding.confidential && a.recipients().contains(&actor.agency))
            .ok_or_else(|| no_alert(id))?;
        Some(alert)
    } else {
        None
    };

    let project_text = req.project.as_deref().unwrap_or_default();
    let year = req.year.unwrap_or_default();
    let never_sent = || {
        unprocessable(
            "unknown_project",
            format!("finance has never sent project {project_text}"),
            json!({"project": project_text}),
        )
    };
    let project = ProjectCode::parse(project_text).map_err(|_| never_sent())?;
    let position = known.position.filter(|p| p.sent).ok_or_else(never_sent)?;
    let mut action = action_for(project.clone(), year);

    let all = ledger::counted(known.actions, NaiveDate::MAX);
    match kind {
        ActionKind::Warn => {
            let deadline = req.deadline.unwrap_or(t);
            if deadline <= t {
                return Err(unprocessable(
                    "deadline_not_after_taken",
                    format!("the deadline {deadline} must be after the day taken ({t})"),
                    json!({"deadline": deadline, "taken_on": t}),
                ));
            }
            if let Some(alert) = alert {
                if let Some(p) = alert.project_code.as_deref()
                    && p != project.as_str()
                {
                    return Err(unprocessable(
                        "alert_of_another_project",
                        format!("alert {} is about project {p}, not {project}", alert.id),
                        json!({"alert": alert.id, "alert_project": p, "project": project}),
                    ));
                }
                if !alert.state.is_active() {
                    return Err(Refusal::new(
                        Conflict,
                        "alert_not_firing",
                        format!("alert {} is {}, not firing", alert.id, alert.state),
                        json!({"alert": alert.id, "state": alert.state, "as_of": alert.as_of}),
                    ));
                }
                action.alert_id = Some(alert.id.clone());
            }
            action.deadline = Some(deadline);
        }
        ActionKind::Freeze | ActionKind::Unfreeze => {
            let effective = req.effective_on.unwrap_or(t);
            if effective < t {
                return Err(unprocessable(
                    "effective_before_taken",
                    format!("effective_on {effective} is before the day taken ({t})"),
                    json!({"effective_on": effective, "taken_on": t}),
                ));
            }
            let frozen = ledger::frozen_on(&all, &project, year, effective);
            match (kind, frozen) {
                (ActionKind::Freeze, Some(f)) => {
                    return Err(Refusal::new(
                        Conflict,
                        "already_frozen",
                        format!(
                            "project {project} ({year}) is already frozen on {effective} (freeze {} from {})",
                            f.action_id,
                            f.effective_on.unwrap_or(f.taken_on)
                        ),
                        json!({"project": project, "year": year, "effective_on": effective,
                               "freeze": f.action_id, "frozen_from": f.effective_on}),
                    ));
                }
                (ActionKind::Unfreeze, None) => {
                    return Err(Refusal::new(
                        Conflict,
                        "not_frozen",
                        format!("project {project} ({year}) is not frozen on {effective}"),
                        json!({"project": project, "year": year, "effective_on": effective}),
                    ));
                }
                (ActionKind::Unfreeze, Some(f)) if f.effective_on == Some(effective) => {
                    // By the definition of frozen, an unfreeze lifts only
                    // the freezes that took effect before its own day: one
                    // on the freeze's day would lift nothing.
                    return Err(unprocessable(
                        "unfreeze_on_freeze_day",
                        format!(
                            "freeze {} takes effect on {effective}: an unfreeze must take effect after it",
                            f.action_id
                        ),
                        json!({"freeze": f.action_id, "effective_on": effective}),
                    ));
                }
                _ => {}
            }
            action.effective_on = Some(effective);
        }
        ActionKind::Reclaim => {
            let amount = amount.unwrap_or(Fen(0));
            let on_t = ledger::counted(known.actions, t);
            let rows = reclaim_rows(position, &project);
            let unapplied =
                ledger::application(&ledger::reclaims(&on_t, &project, year), &rows, t).unapplied();
            let balance = position.quota - position.exp - unapplied;
            if amount > balance {
                return Err(unprocessable(
                    "reclaim_above_balance",
                    format!(
                        "reclaim of {amount} yuan exceeds the unspent balance of {balance} yuan on {t} \
                         (quota {} − spent {} − reclaims not yet applied {})",
                        position.quota, position.exp, unapplied
                    ),
                    json!({"amount": yuan(amount), "balance": yuan(balance),
                           "quota": yuan(position.quota), "spent": yuan(position.exp),
                           "unapplied_reclaims": yuan(unapplied), "on": t}),
                ));
            }
        }
        ActionKind::Revive => {
            let amount = amount.unwrap_or(Fen(0));
            let from = req.from.clone().unwrap_or_default();
            let holds = ledger::holdings(&all);
            let mut listed: Vec<Value> = Vec::new();
            let mut held = Fen(0);
            for (i, id) in from.iter().enumerate() {
                let r = known
                    .actions
                    .iter()
                    .find(|a| &a.action_id == id)
                    .ok_or_else(|| no_action(id))?;
                let bad = |reason: &'static str, message: String| {
                    unprocessable(reason, message, json!({"from": id}))
                };
                if r.kind != ActionKind::Reclaim {
                    return Err(bad(
                        "from_not_reclaim",
                        format!("{id} is a {}, not a reclaim", r.kind),
                    ));
                }
                if from[..i].contains(id) {
                    return Err(bad("from_repeated", format!("from names {id} twice")));
                }
                if r.year != year {
                    return Err(bad(
                        "from_other_year",
                        format!("reclaim {id} is of {}, not {year}", r.year),
                    ));
                }
                if r.project_code == project {
                    return Err(bad(
                        "from_own_project",
                        format!("reclaim {id} is of project {project} itself"),
                    ));
                }
                if r.taken_on > t {
                    return Err(bad(
                        "from_after_taken",
                        format!("reclaim {id} was taken on {}, after {t}", r.taken_on),
                    ));
                }
                let h = holds.get(id).copied().unwrap_or(Fen(0));
                held = held + h;
                listed.push(json!({"action_id": id, "holds": yuan(h)}));
            }
            if amount > held {
                return Err(unprocessable(
                    "revive_above_held",
                    format!(
                        "revive of {amount} yuan exceeds the {held} yuan its reclaims still hold"
                    ),
                    json!({"amount": yuan(amount), "held": yuan(held), "from": listed}),
                ));
            }
            action.from = from;
        }
        ActionKind::Withdraw => {}
    }
    Ok(action)
}

fn decide_withdraw(
    actor: &Actor,
    req: &ActionRequest,
    known: &Known<'_>,
    t: NaiveDate,
    action_for: impl Fn(ProjectCode, i32) -> Action,
) -> Result<Action, Refusal> {
    let id = req.action.as_deref().unwrap_or_default();
    // An action the caller may not even see is not found, like one that
    // does not exist: its existence is not revealed either.
    let target = known
        .actions
        .iter()
        .find(|a| a.action_id == id)
        .filter(|a| view::may_see(known.actions, a, actor.agency))
        .ok_or_else(|| no_action(id))?;
    if target.agency != actor.agency {
        return Err(Refusal::new(
            Forbidden,
            "not_your_action",
            format!(
                "{id} was taken by {}: only it may withdraw it",
                target.agency
            ),
            json!({"action": id, "agency": target.agency}),
        ));
    }
    if target.kind == ActionKind::Withdraw {
        return Err(unprocessable(
            "withdraw_of_withdrawal",
            format!("{id} is a withdrawal: it cannot be withdrawn"),
            json!({"action": id}),
        ));
    }
    if let Some(w) = ledger::withdrawal(known.actions, id, NaiveDate::MAX) {
        return Err(Refusal::new(
            Conflict,
            "already_withdrawn",
            format!(
                "{id} was already withdrawn by {} on {}",
                w.action_id, w.taken_on
            ),
            json!({"action": id, "withdrawal": w.action_id, "taken_on": w.taken_on}),
        ));
    }
    if t < target.taken_on {
        return Err(unprocessable(
            "withdrawn_before_taken",
            format!(
                "a withdrawal taken on {} cannot precede the action, taken on {}",
                t, target.taken_on
            ),
            json!({"action": id, "taken_on": t, "action_taken_on": target.taken_on}),
        ));
    }
    Ok(Action {
        withdraws: Some(id.to_owned()),
        ..action_for(target.project_code.clone(), target.year)
    })
}

/// Finance's reclaim rows of the project, as (approved, amount).
pub fn reclaim_rows(position: &ProjectPosition, project: &ProjectCode) -> Vec<(NaiveDate, Fen)> {
    position
        .moves
        .iter()
        .filter(|m| {
            m.project_code == project.as_str() && m.kind == crate::model::QuotaKind::Reclaim
        })
        .map(|m| (m.approved_on, m.amount))
        .collect()
}

/// A new action id: `act_` and 32 hex digits from the TLS stack's secure
/// random source (ids are shown to every agency an action goes to, so they
/// carry nothing but themselves).
pub fn new_action_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| StoreError::Corrupt("no secure random source".into()))?;
    Ok(format!("act_{}", hex::encode(bytes)))
}

fn request_hash(req: &ActionRequest) -> String {
    let text = serde_json::to_string(req).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Takes an action: refused, or recorded with one outbox event per
/// subscriber of each agency it goes to, in one transaction. Under an
/// `Idempotency-Key` that `actor`'s agency gave within 24 hours, the first
/// answer is given again and nothing is recorded.
pub async fn take(
    store: &dyn Store,
    subscribers: &[Subscriber],
    actor: &Actor,
    req: &ActionRequest,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Taken, TakeError> {
    let today = now.with_timezone(&china_time()).date_naive();
    // Held until the commit: nothing the refusals read changes meanwhile.
    let mut tx = store.begin_action().await?;
    let hash = request_hash(req);
    if let Some(key) = idempotency_key
        && let Some(r) = store
            .remembered(actor.agency, key, now - IDEMPOTENCY_WINDOW)
            .await?
    {
        if r.request_hash != hash {
            return Err(unprocessable(
                    "idempotency_key_reused",
                    format!(
                        "Idempotency-Key {key:?} was given to another request (action {}) within 24 hours",
                        r.action_id
                    ),
                    json!({"idempotency_key": key, "action_id": r.action_id}),
                )
                .into());
        }
        let answer = serde_json::from_str(&r.answer)
            .map_err(|e| StoreError::Corrupt(format!("a remembered answer: {e}")))?;
        return Ok(Taken {
            action_id: r.action_id,
            answer,
            replayed: true,
            events: 0,
        });
    }
    let actions = store.actions(None).await?;
    let alert = match (req.kind, req.alert.as_deref()) {
        (ActionKind::Warn, Some(id)) => store.get_alert(id).await?,
        _ => None,
    };
    let t = req.taken_on.unwrap_or(today);
    let position = match (req.project.as_deref().map(ProjectCode::parse), req.year) {
        (Some(Ok(p)), Some(y)) if req.kind != ActionKind::Withdraw => {
            Some(store.project_position(p.as_str(), y, t).await?)
        }
        _ => None,
    };
    let known = Known {
        today,
        actions: &actions,
        alert: alert.as_ref(),
        position: position.as_ref(),
    };
    // Recorded strictly after every action before it, so that "in the
    // order taken, then recorded" never ties, whatever the clock's grain.
    let recorded_at = actions
        .iter()
        .map(|a| a.recorded_at + Duration::microseconds(1))
        .fold(now.trunc_subsecs(6), DateTime::max);
    let action = decide(actor, req, &known, new_action_id()?, recorded_at)?;
    let withdrawn = view::withdrawn(&actions, &action);
    let events = view::events(&action, withdrawn, subscribers, now);
    let answer = view::action_json(&action, withdrawn);
    let remembered = idempotency_key.map(|key| Remembered {
        agency: actor.agency,
        key: key.to_owned(),
        request_hash: hash,
        action_id: action.action_id.clone(),
        answer: answer.to_string(),
        created_at: now,
    });
    // Actions are recorded by no adapter run.
    let mut batch = Batch::new(Collection::Actions, RunId(0), now);
    batch.items = vec![Item::from(Record::Action(action.clone()))];
    tx.record(&batch, &events, remembered.as_ref()).await?;
    tx.commit().await?;
    tracing::info!(
        action_id = %action.action_id, kind = %action.kind, agency = %action.agency,
        events = events.len(), "action recorded"
    );
    Ok(Taken {
        action_id: action.action_id,
        answer,
        replayed: false,
        events: events.len(),
    })
}

/// The actions `agency` may see, filtered, in the order taken.
pub async fn visible(
    store: &dyn Store,
    agency: Agency,
    project: Option<&str>,
    kind: Option<ActionKind>,
    year: Option<i32>,
) -> Result<Vec<view::ActionView>, StoreError> {
    let actions = store.actions(year).await?;
    // Withdrawals name actions of any year: read them all when filtering.
    let all = if year.is_some() {
        store.actions(None).await?
    } else {
        actions.clone()
    };
    Ok(actions
        .iter()
        .filter(|a| view::may_see(&all, a, agency))
        .filter(|a| project.is_none_or(|p| a.project_code.as_str() == p))
        .filter(|a| kind.is_none_or(|k| a.kind == k))
        .map(|a| view::listed(&all, a))
        .collect())
}
