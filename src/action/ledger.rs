//! What the recorded actions amount to on a day, as `RULES.md` § Actions
//! defines it: which actions count, when a project is *frozen*, which
//! reclaims and revives finance has *applied*, what a reclaim still
//! *holds*. Pure functions over the actions and finance's quota rows; the
//! refusals and the rules that follow actions through both use them.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

use crate::model::{Action, ActionKind, ProjectCode};
use crate::money::Fen;

/// The order actions are judged in: taken, then recorded.
pub fn in_order(actions: &mut [&Action]) {
    actions.sort_by(|a, b| {
        (a.taken_on, a.recorded_at, &a.action_id).cmp(&(b.taken_on, b.recorded_at, &b.action_id))
    });
}

/// The withdrawal of `id` that counts on day `d`, if any: a withdrawn
/// action counts nowhere from the day its withdrawal is taken.
pub fn withdrawal<'a>(actions: &'a [Action], id: &str, d: NaiveDate) -> Option<&'a Action> {
    actions.iter().find(|w| {
        w.kind == ActionKind::Withdraw && w.withdraws.as_deref() == Some(id) && w.taken_on <= d
    })
}

/// The actions (withdrawals aside) that count on day `d`: taken on or before
/// it and not withdrawn by then, in the order taken, then recorded.
pub fn counted(actions: &[Action], d: NaiveDate) -> Vec<&Action> {
    let mut out: Vec<&Action> = actions
        .iter()
        .filter(|a| a.kind != ActionKind::Withdraw && a.taken_on <= d)
        .filter(|a| withdrawal(actions, &a.action_id, d).is_none())
        .collect();
    in_order(&mut out);
    out
}

fn of<'a>(
    counted: &[&'a Action],
    kind: ActionKind,
    project: &ProjectCode,
    year: i32,
) -> Vec<&'a Action> {
    counted
        .iter()
        .copied()
        .filter(|a| a.kind == kind && &a.project_code == project && a.year == year)
        .collect()
}

/// A freeze's breach window: from its `effective_on` to the day before the
/// first unfreeze that takes effect after it (open while there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreezeWindow<'a> {
    pub freeze: &'a Action,
    pub from: NaiveDate,
    /// The window's last day.
    pub until: Option<NaiveDate>,
}

impl FreezeWindow<'_> {
    pub fn contains(&self, d: NaiveDate) -> bool {
        d >= self.from && self.until.is_none_or(|u| d <= u)
    }
}

/// The breach windows of every counted freeze of (p, Y).
pub fn freeze_windows<'a>(
    counted: &[&'a Action],
    project: &ProjectCode,
    year: i32,
) -> Vec<FreezeWindow<'a>> {
    let unfreezes: Vec<NaiveDate> = of(counted, ActionKind::Unfreeze, project, year)
        .iter()
        .filter_map(|u| u.effective_on)
        .collect();
    of(counted, ActionKind::Freeze, project, year)
        .into_iter()
        .filter_map(|freeze| {
            let from = freeze.effective_on?;
            let lifted = unfreezes.iter().copied().filter(|u| *u > from).min();
            Some(FreezeWindow {
                freeze,
                from,
                until: lifted.map(|u| u - Duration::days(1)),
            })
        })
        .collect()
}

/// The freeze that makes (p, Y) frozen on day `d`: `effective_on ≤ d` and
/// no unfreeze taking effect in `(effective_on, d]`.
pub fn frozen_on<'a>(
    counted: &[&'a Action],
    project: &ProjectCode,
    year: i32,
    d: NaiveDate,
) -> Option<&'a Action> {
    freeze_windows(counted, project, year)
        .into_iter()
        .find(|w| w.contains(d))
        .map(|w| w.freeze)
}

/// One reclaim (or revive) in the order of its project's, against what
/// finance's data shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    pub action: &'a Action,
    /// Its amount plus every earlier one's.
    pub cumulative: Fen,
    pub applied: bool,
}

/// How far finance's quota rows carry a project's reclaims (or revives) as
/// of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application<'a> {
    /// `R(p, D)`: the rows approved from the first action's day through `D`.
    pub shown: Fen,
    pub steps: Vec<Step<'a>>,
}

impl Application<'_> {
    /// What the actions taken so far ask for beyond what finance shows,
    /// never below zero.
    pub fn unapplied(&self) -> Fen {
        let asked: Fen = self.steps.iter().filter_map(|s| s.action.amount).sum();
        Fen((asked.0 - self.shown.0).max(0))
    }
}

/// `actions` (counted, of one project and kind, in order) as of `d`,
/// against finance's `rows` (approved day, amount) for that project: each
/// is applied up to the first whose cumulative amount exceeds `R(p, d)`.
pub fn application<'a>(
    actions: &[&'a Action],
    rows: &[(NaiveDate, Fen)],
    d: NaiveDate,
) -> Application<'a> {
    let taken: Vec<&Action> = actions
        .iter()
        .copied()
        .filter(|a| a.taken_on <= d)
        .collect();
    let shown = match taken.first() {
        Some(first) => rows
            .iter()
            .filter(|(on, _)| *on >= first.taken_on && *on <= d)
            .map(|(_, amount)| *amount)
            .sum(),
        None => Fen(0),
    };
    let mut cumulative = Fen(0);
    let mut short = false;
    let steps = taken
        .into_iter()
        .map(|action| {
            cumulative = cumulative + action.amount.unwrap_or(Fen(0));
            short = short || cumulative > shown;
            Step {
                action,
                cumulative,
                applied: !short,
            }
        })
        .collect();
    Application { shown, steps }
}

/// The counted reclaims of (p, Y), in order.
pub fn reclaims<'a>(counted: &[&'a Action], project: &ProjectCode, year: i32) -> Vec<&'a Action> {
    of(counted, ActionKind::Reclaim, project, year)
}

/// The counted revives into (q, Y), in order.
pub fn revives<'a>(counted: &[&'a Action], project: &ProjectCode, year: i32) -> Vec<&'a Action> {
    of(counted, ActionKind::Revive, project, year)
}

/// What each counted reclaim still holds: its amount minus what the counted
/// revives drew from it, each revive drawing on its `from` reclaims in the
/// order listed, each as far as it holds.
pub fn holdings(counted: &[&Action]) -> BTreeMap<String, Fen> {
    let mut holds: BTreeMap<String, Fen> = counted
        .iter()
        .filter(|a| a.kind == ActionKind::Reclaim)
        .map(|a| (a.action_id.clone(), a.amount.unwrap_or(Fen(0))))
        .collect();
    for revive in counted.iter().filter(|a| a.kind == ActionKind::Revive) {
        draw(&mut holds, &revive.from, revive.amount.unwrap_or(Fen(0)));
    }
    holds
}

/// Draws `amount` from the reclaims `from`, in that order, each as far as
/// it holds; returns what was drawn from each.
pub fn draw(holds: &mut BTreeMap<String, Fen>, from: &[String], amount: Fen) -> Vec<(String, Fen)> {
    let mut left = amount;
    let mut drawn = Vec::new();
    for id in from {
        let Some(held) = holds.get_mut(id) else {
            continue;
        };
        let take = Fen(left.0.min(held.0).max(0));
        held.0 -= take.0;
        left.0 -= take.0;
        drawn.push((id.clone(), take));
    }
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    const P: &str = "3701002021000001";
    const Q: &str = "3701002021000002";

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn act(id: &str, kind: ActionKind, project: &str, taken: &str) -> Action {
        Action {
            action_id: id.into(),
            kind,
            agency: crate::model::Agency::Finance,
            token: "t".into(),
            by: "王".into(),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
            taken_on: day(taken),
            project_code: ProjectCode::parse(project).unwrap(),
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

    fn effective(mut a: Action, on: &str) -> Action {
        a.effective_on = Some(day(on));
        a
    }

    fn amount(mut a: Action, fen: i64) -> Action {
        a.amount = Some(Fen(fen));
        a
    }

    fn withdraw(id: &str, of: &str, taken: &str) -> Action {
        let mut w = act(id, ActionKind::Withdraw, P, taken);
        w.withdraws = Some(of.into());
        w
    }

    #[test]
    fn frozen_from_its_day_to_the_day_before_an_unfreeze_after_it() {
        let p = ProjectCode::parse(P).unwrap();
        let all = vec![
            effective(act("f", ActionKind::Freeze, P, "2021-03-01"), "2021-03-05"),
            effective(
                act("u", ActionKind::Unfreeze, P, "2021-04-01"),
                "2021-04-10",
            ),
        ];
        let c = counted(&all, day("2021-12-31"));
        assert!(frozen_on(&c, &p, 2021, day("2021-03-04")).is_none());
        assert_eq!(
            frozen_on(&c, &p, 2021, day("2021-03-05"))
                .unwrap()
                .action_id,
            "f"
        );
        assert!(frozen_on(&c, &p, 2021, day("2021-04-09")).is_some());
        assert!(frozen_on(&c, &p, 2021, day("2021-04-10")).is_none());
        let w = freeze_windows(&c, &p, 2021);
        assert_eq!(
            (w[0].from, w[0].until),
            (day("2021-03-05"), Some(day("2021-04-09")))
        );
        // Before the unfreeze was taken, the freeze runs on.
        let c = counted(&all, day("2021-03-31"));
        assert!(frozen_on(&c, &p, 2021, day("2021-04-20")).is_some());
        // An unfreeze effective on the freeze's own day lifts nothing.
        let same = vec![
            effective(act("f", ActionKind::Freeze, P, "2021-03-01"), "2021-03-05"),
            effective(
                act("u", ActionKind::Unfreeze, P, "2021-03-01"),
                "2021-03-05",
            ),
        ];
        let c = counted(&same, day("2021-12-31"));
        assert!(frozen_on(&c, &p, 2021, day("2021-06-01")).is_some());
    }

    #[test]
    fn a_withdrawn_action_counts_from_the_day_its_withdrawal_is_taken() {
        let p = ProjectCode::parse(P).unwrap();
        let all = vec![
            effective(act("f", ActionKind::Freeze, P, "2021-03-01"), "2021-03-01"),
            withdraw("w", "f", "2021-03-20"),
        ];
        assert_eq!(counted(&all, day("2021-03-19")).len(), 1);
        assert!(counted(&all, day("2021-03-20")).is_empty());
        let c = counted(&all, day("2021-03-20"));
        assert!(frozen_on(&c, &p, 2021, day("2021-03-10")).is_none());
    }

    #[test]
    fn reclaims_are_applied_up_to_the_first_beyond_what_finance_shows() {
        let r1 = amount(act("r1", ActionKind::Reclaim, P, "2021-05-01"), 300);
        let r2 = amount(act("r2", ActionKind::Reclaim, P, "2021-05-10"), 200);
        let all = vec![r1, r2];
        let c = counted(&all, day("2021-12-31"));
        // A row before the first reclaim's day is not its application.
        let rows = [(day("2021-04-30"), Fen(500)), (day("2021-05-03"), Fen(400))];
        let a = application(&c, &rows, day("2021-06-01"));
        assert_eq!(a.shown, Fen(400));
        let applied: Vec<(Fen, bool)> = a.steps.iter().map(|s| (s.cumulative, s.applied)).collect();
        assert_eq!(applied, vec![(Fen(300), true), (Fen(500), false)]);
        assert_eq!(a.unapplied(), Fen(100));
        // Before the second was taken: only the first, applied.
        let a = application(&c, &rows, day("2021-05-09"));
        assert_eq!(a.steps.len(), 1);
        assert_eq!(a.unapplied(), Fen(0));
        // Before any row: both unapplied.
        let a = application(&c, &rows, day("2021-05-02"));
        assert_eq!((a.shown, a.unapplied()), (Fen(0), Fen(300)));
    }

    #[test]
    fn revives_draw_on_their_reclaims_in_the_order_listed() {
        let all = vec![
            amount(act("r1", ActionKind::Reclaim, P, "2021-05-01"), 300),
            amount(act("r2", ActionKind::Reclaim, P, "2021-05-02"), 200),
            {
                let mut v = amount(act("v1", ActionKind::Revive, Q, "2021-05-03"), 350);
                v.from = vec!["r1".into(), "r2".into()];
                v
            },
        ];
        let c = counted(&all, day("2021-12-31"));
        let holds = holdings(&c);
        assert_eq!(holds["r1"], Fen(0));
        assert_eq!(holds["r2"], Fen(150));
        let mut h = holds.clone();
        assert_eq!(
            draw(&mut h, &["r2".into(), "r1".into()], Fen(500)),
            vec![("r2".into(), Fen(150)), ("r1".into(), Fen(0))]
        );
    }
}
