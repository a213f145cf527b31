//! Who hears of an action and what they see of it: the agencies of
//! `RULES.md` § Actions, the JSON of the API and of the `action.*`
//! webhooks, and the outbox events of a recorded action.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ledger::withdrawal;
use crate::clock::rfc3339;
use crate::deliver::Subscriber;
use crate::model::{Action, ActionKind, Agency, ProjectCode};
use crate::store::alerts::{EventType, NewEvent};

/// The set of agencies an action is delivered to (`RULES.md`), in the
/// model's order; a withdrawal goes where the action it withdraws went.
pub fn audience(action: &Action, withdrawn: Option<&Action>) -> Vec<Agency> {
    use Agency::*;
    let mut set: Vec<Agency> = match action.kind {
        ActionKind::Warn => vec![action.agency, Finance, Npc, Orgdept],
        ActionKind::Freeze | ActionKind::Unfreeze => vec![Finance, Npc, Audit, Discipline],
        ActionKind::Reclaim => vec![Finance, Npc, Audit],
        ActionKind::Revive => vec![Finance, Npc],
        ActionKind::Withdraw => match withdrawn {
            Some(w) if w.kind != ActionKind::Withdraw => audience(w, None),
            _ => vec![action.agency],
        },
    };
    set.sort();
    set.dedup();
    set
}

/// The action a withdrawal names, among `actions`.
pub fn withdrawn<'a>(actions: &'a [Action], w: &Action) -> Option<&'a Action> {
    let id = w.withdraws.as_deref()?;
    actions.iter().find(|a| a.action_id == id)
}

/// Whether `agency` may see `action` (the agencies it is delivered to).
pub fn may_see(actions: &[Action], action: &Action, agency: Agency) -> bool {
    audience(action, withdrawn(actions, action)).contains(&agency)
}

/// An action as the API answers it and its event's `data` carries: every
/// field it has (money as yuan strings), and the kind of the action a
/// withdrawal takes back; a listing adds its withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActionView {
    /// `act_` and 32 hex digits.
    pub action_id: String,
    pub kind: ActionKind,
    pub agency: Agency,
    /// The name of the token it was taken with (`cli` from the command line).
    pub token: String,
    /// The person who took it.
    pub by: String,
    #[schema(value_type = DateTime<Utc>)]
    pub recorded_at: String,
    pub taken_on: NaiveDate,
    #[schema(value_type = String)]
    pub project: ProjectCode,
    pub year: i32,
    pub reason: String,
    /// `warn`: the alert it warns about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub alert_id: Option<String>,
    /// `warn`: the day the unit must answer by.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub deadline: Option<NaiveDate>,
    /// `freeze`, `unfreeze`: the day it takes effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub effective_on: Option<NaiveDate>,
    /// `reclaim`, `revive`: yuan.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Option<crate::api::schemas::Yuan>)]
    pub amount: Option<String>,
    /// `revive`: the reclaims it draws on, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub from: Option<Vec<String>>,
    /// `withdraw`: the action it takes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub withdraws: Option<String>,
    /// `withdraw`: the kind of the action it takes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub withdrawn_kind: Option<ActionKind>,
    /// In a listing: the withdrawal that took it back, if one was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub withdrawn_by: Option<WithdrawnBy>,
}

/// The withdrawal of a listed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WithdrawnBy {
    pub action_id: String,
    pub taken_on: NaiveDate,
}

/// The action as the API answers it (see [`ActionView`]).
pub fn view(action: &Action, withdrawn: Option<&Action>) -> ActionView {
    ActionView {
        action_id: action.action_id.clone(),
        kind: action.kind,
        agency: action.agency,
        token: action.token.clone(),
        by: action.by.clone(),
        recorded_at: rfc3339(action.recorded_at),
        taken_on: action.taken_on,
        project: action.project_code.clone(),
        year: action.year,
        reason: action.reason.clone(),
        alert_id: action.alert_id.clone(),
        deadline: action.deadline,
        effective_on: action.effective_on,
        amount: action.amount.map(|a| a.to_yuan()),
        from: (action.kind == ActionKind::Revive).then(|| action.from.clone()),
        withdraws: action.withdraws.clone(),
        withdrawn_kind: withdrawn
            .filter(|_| action.kind == ActionKind::Withdraw)
            .map(|w| w.kind),
        withdrawn_by: None,
    }
}

/// The action as JSON: [`view`], as the webhook's `data` and the stored
/// answer of an `Idempotency-Key` carry it.
pub fn action_json(action: &Action, withdrawn: Option<&Action>) -> Value {
    serde_json::to_value(view(action, withdrawn)).unwrap_or(Value::Null)
}

/// An action as a listing shows it: its fields, and its withdrawal if one
/// was taken.
pub fn listed(actions: &[Action], action: &Action) -> ActionView {
    let mut v = view(action, withdrawn(actions, action));
    v.withdrawn_by =
        withdrawal(actions, &action.action_id, chrono::NaiveDate::MAX).map(|w| WithdrawnBy {
            action_id: w.action_id.clone(),
            taken_on: w.taken_on,
        });
    v
}

/// The actions taken on (project, year) that `agency` may see, as a
/// listing shows them (withdrawals aside: a withdrawn action says so).
pub fn on_project(actions: &[Action], project: &str, year: i32, agency: Agency) -> Vec<ActionView> {
    actions
        .iter()
        .filter(|a| a.kind != ActionKind::Withdraw)
        .filter(|a| a.project_code.as_str() == project && a.year == year)
        .filter(|a| may_see(actions, a, agency))
        .map(|a| listed(actions, a))
        .collect()
}

/// The webhook body announcing an action.
pub fn event_body(action: &Action, withdrawn: Option<&Action>) -> String {
    json!({
        "type": EventType::of_action(action.kind),
        "timestamp": rfc3339(action.recorded_at),
        "data": action_json(action, withdrawn),
    })
    .to_string()
}

/// One outbox event per subscriber of each agency the action goes to (each
/// subscriber once), all with the same body. The events of a withdrawal
/// go in order with those of the action it withdraws.
pub fn events(
    action: &Action,
    withdrawn: Option<&Action>,
    subscribers: &[Subscriber],
    _now: DateTime<Utc>,
) -> Vec<NewEvent> {
    let event_type = EventType::of_action(action.kind);
    let body = event_body(action, withdrawn);
    let subject = withdrawn.map_or(&action.action_id, |w| &w.action_id);
    let audience = audience(action, withdrawn);
    let mut out: Vec<NewEvent> = Vec::new();
    for s in subscribers
        .iter()
        .filter(|s| audience.contains(&s.agency) && s.wants(event_type))
    {
        if out.iter().any(|e| e.subscriber == s.name) {
            continue;
        }
        let mut h = Sha256::new();
        for part in [action.action_id.as_str(), event_type.as_str(), &s.name] {
            h.update(part.as_bytes());
            h.update(b"\n");
        }
        out.push(NewEvent {
            event_id: format!("msg_{}", &hex::encode(h.finalize())[..32]),
            alert_id: subject.clone(),
            subscriber: s.name.clone(),
            agency: s.agency,
            event_type,
            body: body.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Agency::*;

    fn action(kind: ActionKind, agency: Agency) -> Action {
        Action {
            action_id: "act_1".into(),
            kind,
            agency,
            token: "t".into(),
            by: "王".into(),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
            taken_on: "2021-05-01".parse().unwrap(),
            project_code: crate::model::ProjectCode::parse("3701002021000001").unwrap(),
            year: 2021,
            alert_id: None,
            deadline: None,
            effective_on: None,
            amount: None,
            from: Vec::new(),
            withdraws: None,
            reason: "r".into(),
        }
    }

    #[test]
    fn each_kind_goes_to_the_agencies_of_the_rules() {
        assert_eq!(
            audience(&action(ActionKind::Warn, Audit), None),
            vec![Npc, Finance, Audit, Orgdept]
        );
        assert_eq!(
            audience(&action(ActionKind::Warn, Finance), None),
            vec![Npc, Finance, Orgdept]
        );
        assert_eq!(
            audience(&action(ActionKind::Freeze, Finance), None),
            vec![Npc, Finance, Audit, Discipline]
        );
        assert_eq!(
            audience(&action(ActionKind::Reclaim, Finance), None),
            vec![Npc, Finance, Audit]
        );
        assert_eq!(
            audience(&action(ActionKind::Revive, Finance), None),
            vec![Npc, Finance]
        );
        let warn = action(ActionKind::Warn, Audit);
        assert_eq!(
            audience(&action(ActionKind::Withdraw, Audit), Some(&warn)),
            vec![Npc, Finance, Audit, Orgdept]
        );
    }
}
