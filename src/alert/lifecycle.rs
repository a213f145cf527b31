//! An alert's lifecycle as one pure function, [`step`]: from the alert as
//! stored (if any), this evaluation's finding for its identity (if any), the
//! time and the settings, to the alert as it is now and the event its
//! recipients must hear. It reads and writes nothing; [`super::apply`] does
//! the store's part around it.
//!
//! An alert **fires** when its condition is first found (or found again
//! after it resolved: a new episode), **escalates** when its severity rises,
//! falls back to firing without an event when the severity falls, is
//! **reminded** every `repeat_interval` unless acknowledged, and **resolves**
//! when an evaluation no longer finds it. An event that could not be told
//! (every recipient silenced) is told at the first evaluation that may.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::reconcile::Finding;
use crate::store::alerts::{AlertRow, AlertState, EventType};

/// Settings of the lifecycle.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// A firing alert is sent again this often (unless acknowledged).
    pub repeat_interval: Duration,
}

/// This evaluation's finding for one alert identity.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The alert id: the hash of the finding's subject.
    pub id: &'a str,
    pub finding: &'a Finding,
    /// The date the evaluation judged.
    pub as_of: NaiveDate,
}

/// What a step did, as an evaluation counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new episode began.
    Fired,
    /// The severity rose.
    Escalated,
    /// Nobody acknowledged it within the repeat interval.
    Reminded,
    /// No longer found.
    Resolved,
    /// Still found; nothing to count (its facts may have changed, and an
    /// event silenced before may be told now).
    Kept,
}

/// The alert after one evaluation, and what its recipients must hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub alert: AlertRow,
    pub event: Option<EventType>,
    pub change: Change,
}

/// The next state of one alert identity. `None` when there is nothing to
/// keep: not found now, and not active before.
pub fn step(
    previous: Option<&AlertRow>,
    found: Option<Found<'_>>,
    now: DateTime<Utc>,
    settings: Lifecycle,
) -> Option<Step> {
    match (previous, found) {
        (Some(prev), Some(found)) if prev.state.is_active() => {
            Some(keep_firing(prev, found, now, settings))
        }
        (previous, Some(found)) => Some(fire(previous, found, now)),
        (Some(prev), None) if prev.state.is_active() => Some(resolve(prev, now)),
        (_, None) => None,
    }
}

/// The alert once its recipients have been told of its newest event.
pub fn told(mut alert: AlertRow, now: DateTime<Utc>) -> AlertRow {
    alert.notified_episode = Some(alert.episode);
    alert.notified_state = Some(alert.state);
    alert.notified_at = Some(now);
    alert
}

/// A new episode: the first, or the next one after a resolution. What the
/// recipients were last told is kept, so that an episode fired while
/// silenced is still known as untold.
fn fire(previous: Option<&AlertRow>, found: Found<'_>, now: DateTime<Utc>) -> Step {
    let f = found.finding;
    let alert = AlertRow {
        id: found.id.to_owned(),
        rule: f.rule,
        subject: f.subject().to_string(),
        confidential: f.confidential,
        severity: f.severity,
        state: AlertState::Firing,
        episode: previous.map_or(1, |p| p.episode + 1),
        unit_code: f.unit_code.clone(),
        project_code: f.project_code.clone(),
        finding: f.clone(),
        as_of: found.as_of,
        first_seen: now,
        changed_at: now,
        resolved_at: None,
        acked_at: None,
        acked_by: None,
        ack_note: None,
        notified_episode: previous.and_then(|p| p.notified_episode),
        notified_state: previous.and_then(|p| p.notified_state),
        notified_at: previous.and_then(|p| p.notified_at),
    };
    Step {
        alert,
        event: Some(EventType::Firing),
        change: Change::Fired,
    }
}

/// An active alert found again: its finding is the newest, its severity
/// may have moved.
fn keep_firing(prev: &AlertRow, found: Found<'_>, now: DateTime<Utc>, settings: Lifecycle) -> Step {
    let f = found.finding;
    let mut a = prev.clone();
    a.severity = f.severity;
    a.finding = f.clone();
    a.as_of = found.as_of;
    a.unit_code = f.unit_code.clone();
    a.project_code = f.project_code.clone();
    let (event, change) = if f.severity > prev.severity {
        a.state = AlertState::Escalated;
        (Some(EventType::Escalated), Change::Escalated)
    } else {
        if f.severity < prev.severity {
            a.state = AlertState::Firing;
        }
        let told = a.notified_episode == Some(a.episode);
        let due = a
            .notified_at
            .is_some_and(|t| now - t >= settings.repeat_interval);
        if !told {
            // Fired while silenced: say so once it may be said.
            let event = match a.state {
                AlertState::Escalated => EventType::Escalated,
                _ => EventType::Firing,
            };
            (Some(event), Change::Kept)
        } else if due && a.acked_at.is_none() {
            (Some(EventType::Reminder), Change::Reminded)
        } else {
            (None, Change::Kept)
        }
    };
    if a != *prev || event.is_some() {
        a.changed_at = now;
    }
    Step {
        alert: a,
        event,
        change,
    }
}

/// An active alert no longer found. Its recipients hear of it only if they
/// heard of this episode.
fn resolve(prev: &AlertRow, now: DateTime<Utc>) -> Step {
    let mut a = prev.clone();
    a.state = AlertState::Resolved;
    a.resolved_at = Some(now);
    a.changed_at = now;
    let told = a.notified_episode == Some(a.episode);
    Step {
        alert: a,
        event: told.then_some(EventType::Resolved),
        change: Change::Resolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{RuleId, Severity};
    use crate::testing::finding;

    const ID: &str = "a1";
    const WEEK: Lifecycle = Lifecycle {
        repeat_interval: Duration::days(7),
    };

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2021, 9, day)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .unwrap()
            .and_utc()
    }

    fn found_at(severity: Severity) -> Finding {
        finding(RuleId::Slow, severity, "370101", "3701002021000001")
    }

    fn found(f: &Finding, day: u32) -> Option<Found<'_>> {
        Some(Found {
            id: ID,
            finding: f,
            as_of: NaiveDate::from_ymd_opt(2021, 9, day).unwrap(),
        })
    }

    /// The alert after a step whose event was told (or not) at `now`.
    fn after(s: Step, told_now: bool, now: DateTime<Utc>) -> AlertRow {
        if told_now && s.event.is_some() {
            told(s.alert, now)
        } else {
            s.alert
        }
    }

    /// The alert of a finding first found on 1 September at 8:00, its
    /// firing told (or, every recipient silenced, not).
    fn fired(f: &Finding, told_now: bool) -> AlertRow {
        let s = step(None, found(f, 1), at(1, 8), WEEK).unwrap();
        after(s, told_now, at(1, 8))
    }

    fn summary(s: &Step) -> (AlertState, Severity, i64, Option<EventType>, Change) {
        (
            s.alert.state,
            s.alert.severity,
            s.alert.episode,
            s.event,
            s.change,
        )
    }

    #[test]
    fn a_first_finding_fires_episode_one() {
        let f = found_at(Severity::Warning);
        let s = step(None, found(&f, 1), at(1, 8), WEEK).unwrap();
        assert_eq!(
            summary(&s),
            (
                AlertState::Firing,
                Severity::Warning,
                1,
                Some(EventType::Firing),
                Change::Fired
            )
        );
        assert_eq!(
            (
                s.alert.first_seen,
                s.alert.changed_at,
                s.alert.notified_episode
            ),
            (at(1, 8), at(1, 8), None)
        );
        assert_eq!(s.alert.finding, f);
        assert_eq!(s.alert.id, ID);
    }

    #[test]
    fn the_same_finding_again_says_nothing_and_changes_nothing() {
        let f = found_at(Severity::Warning);
        let first = step(None, found(&f, 1), at(1, 8), WEEK).unwrap();
        let a = after(first, true, at(1, 8));
        let s = step(Some(&a), found(&f, 1), at(2, 8), WEEK).unwrap();
        assert_eq!((s.event, s.change), (None, Change::Kept));
        assert_eq!(s.alert, a, "not even changed_at moves");
    }

    #[test]
    fn new_facts_move_changed_at_without_an_event() {
        let f = found_at(Severity::Warning);
        let a = fired(&f, true);
        let s = step(Some(&a), found(&f, 2), at(2, 8), WEEK).unwrap();
        assert_eq!((s.event, s.change), (None, Change::Kept));
        assert_eq!(
            (s.alert.as_of, s.alert.changed_at),
            (NaiveDate::from_ymd_opt(2021, 9, 2).unwrap(), at(2, 8))
        );
    }

    #[test]
    fn a_rising_severity_escalates_and_a_falling_one_fires_quietly() {
        let warning = found_at(Severity::Warning);
        let critical = found_at(Severity::Critical);
        let a = fired(&warning, true);
        let up = step(Some(&a), found(&critical, 2), at(2, 8), WEEK).unwrap();
        assert_eq!(
            summary(&up),
            (
                AlertState::Escalated,
                Severity::Critical,
                1,
                Some(EventType::Escalated),
                Change::Escalated
            )
        );
        let a = after(up, true, at(2, 8));
        let down = step(Some(&a), found(&warning, 3), at(3, 8), WEEK).unwrap();
        assert_eq!(
            summary(&down),
            (AlertState::Firing, Severity::Warning, 1, None, Change::Kept)
        );
        assert_eq!(down.alert.changed_at, at(3, 8));
    }

    #[test]
    fn reminders_follow_the_repeat_interval_until_acknowledged() {
        let f = found_at(Severity::Warning);
        let a = fired(&f, true);
        // One hour short of a week: not yet.
        let s = step(Some(&a), found(&f, 1), at(8, 7), WEEK).unwrap();
        assert_eq!(s.event, None);
        let s = step(Some(&a), found(&f, 1), at(8, 8), WEEK).unwrap();
        assert_eq!(
            (s.event, s.change),
            (Some(EventType::Reminder), Change::Reminded)
        );
        let reminded = after(s, true, at(8, 8));
        assert_eq!(
            reminded.notified_at,
            Some(at(8, 8)),
            "the next one is a week on"
        );
        let mut acked = a.clone();
        acked.acked_at = Some(at(2, 8));
        let s = step(Some(&acked), found(&f, 1), at(20, 8), WEEK).unwrap();
        assert_eq!((s.event, s.change), (None, Change::Kept));
    }

    #[test]
    fn an_event_not_told_is_told_at_the_next_evaluation_that_may() {
        let warning = found_at(Severity::Warning);
        let critical = found_at(Severity::Critical);
        // Fired while every recipient was silenced: nothing was told.
        let a = fired(&warning, false);
        let s = step(Some(&a), found(&warning, 2), at(2, 8), WEEK).unwrap();
        assert_eq!((s.event, s.change), (Some(EventType::Firing), Change::Kept));
        // Escalated while silenced: the escalation is what is told.
        let up = after(
            step(Some(&a), found(&critical, 2), at(2, 8), WEEK).unwrap(),
            false,
            at(2, 8),
        );
        let s = step(Some(&up), found(&critical, 3), at(3, 8), WEEK).unwrap();
        assert_eq!(
            (s.event, s.change),
            (Some(EventType::Escalated), Change::Kept)
        );
    }

    #[test]
    fn an_alert_not_found_resolves_and_says_so_only_if_its_episode_was_told() {
        let f = found_at(Severity::Warning);
        let a = fired(&f, true);
        let s = step(Some(&a), None, at(2, 8), WEEK).unwrap();
        assert_eq!(
            summary(&s),
            (
                AlertState::Resolved,
                Severity::Warning,
                1,
                Some(EventType::Resolved),
                Change::Resolved
            )
        );
        assert_eq!(
            (s.alert.resolved_at, s.alert.changed_at),
            (Some(at(2, 8)), at(2, 8))
        );
        let resolved = told(s.alert, at(2, 8));
        assert_eq!(
            (resolved.notified_state, resolved.notified_episode),
            (Some(AlertState::Resolved), Some(1))
        );

        let silenced = fired(&f, false);
        let s = step(Some(&silenced), None, at(2, 8), WEEK).unwrap();
        assert_eq!((s.event, s.change), (None, Change::Resolved));
    }

    #[test]
    fn a_resolved_alert_stays_so_until_found_again_as_a_new_episode() {
        let f = found_at(Severity::Critical);
        let a = fired(&f, true);
        let mut acked = a;
        acked.acked_at = Some(at(1, 9));
        let resolved = after(
            step(Some(&acked), None, at(2, 8), WEEK).unwrap(),
            true,
            at(2, 8),
        );
        assert_eq!(step(Some(&resolved), None, at(3, 8), WEEK), None);
        assert_eq!(step(None, None, at(3, 8), WEEK), None);
        let again = step(Some(&resolved), found(&f, 4), at(4, 8), WEEK).unwrap();
        assert_eq!(
            summary(&again),
            (
                AlertState::Firing,
                Severity::Critical,
                2,
                Some(EventType::Firing),
                Change::Fired
            )
        );
        assert_eq!(
            (
                again.alert.first_seen,
                again.alert.acked_at,
                again.alert.resolved_at
            ),
            (at(4, 8), None, None),
            "an acknowledgement ends with its episode"
        );
        assert_eq!(
            again.alert.notified_episode,
            Some(1),
            "until told, episode 2 is untold"
        );
    }
}
