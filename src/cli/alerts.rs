//! `liankong alerts …` and `liankong deliveries …`.
//!
//! Listing and showing alerts needs `--agency`: the command answers as that
//! agency and shows only what it may see, so no listing ever mixes
//! discipline data into another agency's view.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;

use crate::alert::{self, SilenceScope, StateFilter};
use crate::clock::Clock;
use crate::config::china_time;
use crate::model::Agency;
use crate::reconcile::Severity;
use crate::store::Store;
use crate::store::alerts::AlertRow;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts as one agency sees them.
    List {
        /// The agency whose view to show (npc, finance, audit, discipline, orgdept).
        #[arg(long)]
        agency: Agency,
        /// Which alerts: one state, or active (firing or escalated).
        #[arg(long, value_enum, default_value_t = StateFilter::Active)]
        state: StateFilter,
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum)]
        severity: Option<Severity>,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        project: Option<String>,
    },
    /// One alert as one agency sees it, as JSON.
    Show {
        /// The alert id, or a unique prefix of at least 8 characters.
        id: String,
        #[arg(long)]
        agency: Agency,
    },
    /// Acknowledge an active alert: its reminders stop until a new episode.
    Ack {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Silence a rule, a unit or a project until a time: alerts are still
    /// evaluated and listed, only not delivered.
    Silence {
        #[arg(long, group = "scope")]
        rule: Option<String>,
        #[arg(long, group = "scope")]
        unit: Option<String>,
        #[arg(long, group = "scope")]
        project: Option<String>,
        /// RFC 3339 time, or a date (midnight China time).
        #[arg(long)]
        until: String,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "operator")]
        by: String,
    },
    /// Lift a silence.
    Unsilence { id: i64 },
    /// Silences, active and past.
    Silences,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Webhook events, newest first.
    List {
        /// pending, delivered or dead.
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put dead letters back in the queue.
    Redrive {
        /// The outbox id of one event.
        id: Option<i64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

fn parse_until(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--until {s:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(china_time()).single())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow::anyhow!("--until {s:?} is not a valid day"))
}

async fn find(store: &dyn Store, id: &str) -> anyhow::Result<AlertRow> {
    if let Some(a) = store.get_alert(id).await? {
        return Ok(a);
    }
    if id.len() < 8 {
        anyhow::bail!("no alert {id:?} (give the id or at least 8 of its first characters)");
    }
    let mut matches: Vec<AlertRow> = store
        .alerts()
        .await?
        .into_iter()
        .filter(|a| a.id.starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => anyhow::bail!("no alert {id:?}"),
        n => anyhow::bail!("{n} alerts start with {id:?}: give more characters"),
    }
}

pub async fn alerts(
    out: &mut dyn Write,
    store: &dyn Store,
    clock: &dyn Clock,
    command: AlertsCommand,
) -> anyhow::Result<ExitCode> {
    let now = clock.now();
    match command {
        AlertsCommand::List {
            agency,
            state,
            rule,
            severity,
            unit,
            project,
        } => {
            if let Some(r) = rule.as_deref().filter(|r| !alert::known_rule(r)) {
                anyhow::bail!("unknown rule {r:?}");
            }
            let filter = alert::AlertFilter {
                state: Some(state),
                rule,
                severity,
                unit,
                project,
                agency: None,
            };
            let views = alert::visible(store, agency, &filter, now).await?;
            writeln!(
                out,
                "{:<14}{:<32}{:<10}{:<11}{:>3}  {:<11}summary",
                "alert", "rule", "severity", "state", "ep", "as_of"
            )?;
            for v in &views {
                writeln!(
                    out,
                    "{:<14}{:<32}{:<10}{:<11}{:>3}  {:<11}{}{}",
                    &v.alert_id[..12.min(v.alert_id.len())],
                    v.rule,
                    v.severity,
                    v.state,
                    v.episode,
                    v.as_of,
                    if v.silenced { "[silenced] " } else { "" },
                    v.summary
                )?;
            }
        }
        AlertsCommand::Show { id, agency } => {
            let a = find(store, &id).await?;
            let silences = alert::in_force(store.silences().await?, now);
            match alert::view_for(&a, agency, &silences) {
                Some(v) => writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?,
                // The same answer as for an id that does not exist: whether a
                // confidential alert exists is itself not for other agencies.
                None => anyhow::bail!("no alert {id:?}"),
            }
        }
        AlertsCommand::Ack { id, by, note } => {
            let a = find(store, &id).await?;
            if !store.ack_alert(&a.id, &by, &note, now).await? {
                anyhow::bail!(
                    "alert {} is resolved; only active alerts can be acknowledged",
                    a.id
                );
            }
            writeln!(out, "acknowledged {}", a.id)?;
        }
        AlertsCommand::Silence {
            rule,
            unit,
            project,
            until,
            reason,
            by,
        } => {
            let (scope, value) = match (rule, unit, project) {
                (Some(r), None, None) => {
                    if !alert::known_rule(&r) {
                        anyhow::bail!("unknown rule {r:?}");
                    }
                    (SilenceScope::Rule, r)
                }
                (None, Some(u), None) => (SilenceScope::Unit, u),
                (None, None, Some(p)) => (SilenceScope::Project, p),
                _ => anyhow::bail!("give exactly one of --rule, --unit, --project"),
            };
            let until = parse_until(&until)?;
            // The API's and the console's checks: a day in the future, before
            // the year 10000, a reason.
            crate::api::shared::check_silence(scope.as_str(), &value, until, &reason, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = store
                .add_silence(scope, &value, None, until, &reason, &by, now)
                .await?;
            writeln!(out, "silence {id}: {scope} {value} until {until}")?;
        }
        AlertsCommand::Unsilence { id } => {
            if !store.lift_silence(id, now).await? {
                anyhow::bail!("no active silence {id}");
            }
            writeln!(out, "silence {id} lifted")?;
        }
        AlertsCommand::Silences => {
            for s in store.silences().await? {
                let status = match s.lifted_at {
                    Some(t) => format!("lifted {t}"),
                    None if s.until <= now => "expired".to_owned(),
                    None => "active".to_owned(),
                };
                writeln!(
                    out,
                    "{:>4}  {:<8}{:<34}until {}  {status}  by {}: {}",
                    s.id, s.scope, s.value, s.until, s.created_by, s.reason
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Alerts by rule and severity, and by recipient: counts only.
pub async fn print_alert_summary(out: &mut dyn Write, store: &dyn Store) -> anyhow::Result<()> {
    let mut by_rule: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut by_recipient: BTreeMap<&str, u64> = BTreeMap::new();
    let alerts = store.alerts().await?;
    for a in alerts.iter().filter(|a| a.state.is_active()) {
        *by_rule
            .entry((a.rule.as_str(), a.severity.as_str()))
            .or_default() += 1;
        for r in a.recipients() {
            *by_recipient.entry(r.as_str()).or_default() += 1;
        }
    }
    writeln!(out, "\nactive alerts by rule and severity:")?;
    for ((rule, severity), n) in &by_rule {
        writeln!(out, "  {rule:<34}{severity:<10}{n:>6}")?;
    }
    writeln!(out, "active alerts by recipient:")?;
    for (agency, n) in &by_recipient {
        writeln!(out, "  {agency:<34}{n:>16}")?;
    }
    Ok(())
}

pub async fn deliveries(
    out: &mut dyn Write,
    store: &dyn Store,
    clock: &dyn Clock,
    command: DeliveriesCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        DeliveriesCommand::List { state, limit } => {
            writeln!(
                out,
                "{:>6}  {:<38}{:<14}{:<16}{:<11}{:<17}{:<10}{:>8}  last error",
                "id", "webhook-id", "alert", "subscriber", "agency", "type", "state", "attempts"
            )?;
            for d in store.deliveries(state.as_deref(), limit).await? {
                writeln!(
                    out,
                    "{:>6}  {:<38}{:<14}{:<16}{:<11}{:<17}{:<10}{:>8}  {}",
                    d.id,
                    d.event_id,
                    &d.alert_id[..12.min(d.alert_id.len())],
                    d.subscriber,
                    d.agency,
                    d.event_type,
                    d.state,
                    d.attempts,
                    d.last_error.unwrap_or_default()
                )?;
            }
        }
        DeliveriesCommand::Redrive { id, all } => {
            if id.is_none() && !all {
                anyhow::bail!("give an outbox id or --all");
            }
            let n = store.redrive(id, clock.now()).await?;
            writeln!(out, "{n} dead letter(s) back in the queue")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
