//! `liankong quarantine`: the rows adapters could not map, and giving up on
//! them. Discipline's rows are confidential: their keys, reasons and raw
//! rows are shown only when asked for by name (`--confidential`).

use std::io::Write;
use std::process::ExitCode;

use super::QuarantineCommand;
use crate::clock::{Clock, SystemClock};
use crate::model::Agency;
use crate::store::{QuarantineEntry, QuarantineSelection, Store};

/// How much of a raw row a listing shows.
const RAW_CHARS: usize = 160;

pub async fn quarantine(
    out: &mut dyn Write,
    store: &dyn Store,
    command: QuarantineCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        QuarantineCommand::List {
            stream,
            all,
            limit,
            confidential,
        } => {
            let entries = store.quarantined(stream, !all, limit).await?;
            if entries.is_empty() {
                writeln!(
                    out,
                    "{}",
                    if all {
                        "no quarantined rows"
                    } else {
                        "no open quarantined rows"
                    }
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            for e in &entries {
                print_entry(out, e, confidential)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Drop { id, stream } => {
            let which = match (id, stream) {
                (Some(id), _) => QuarantineSelection::Id(id),
                (None, Some(stream)) => QuarantineSelection::Stream(stream),
                (None, None) => anyhow::bail!("name a row by its id, or a --stream"),
            };
            let dropped = store.drop_quarantined(which, SystemClock.now()).await?;
            if dropped == 0 {
                writeln!(out, "no open quarantined row matches: nothing dropped")?;
                return Ok(ExitCode::from(1));
            }
            writeln!(
                out,
                "dropped {dropped} quarantined row(s): they no longer hold their stream back; \
                 the source's rows are not asked for again"
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_entry(
    out: &mut dyn Write,
    e: &QuarantineEntry,
    confidential: bool,
) -> std::io::Result<()> {
    let hidden = !confidential
        && e.collection
            .split_once('.')
            .and_then(|(agency, _)| Agency::parse(agency))
            .is_some_and(Agency::is_confidential);
    let kept = match (&e.key, e.kept_version) {
        (None, _) => "its key cannot be read".to_owned(),
        (Some(_), Some(v)) => format!("the record keeps version {v}"),
        (Some(_), None) => "no stored record has its key".to_owned(),
    };
    writeln!(
        out,
        "#{} {} {} (met {} time(s), first in run {}, last in run {}){}",
        e.id,
        e.collection,
        e.state.as_str(),
        e.sightings,
        e.run.map_or("-".into(), |r| r.to_string()),
        e.last_run.map_or("-".into(), |r| r.to_string()),
        if e.holds {
            "; holds the stream's high-water mark"
        } else {
            ""
        }
    )?;
    if hidden {
        writeln!(
            out,
            "    (confidential: key, reason and row shown with --confidential)"
        )?;
        return Ok(());
    }
    writeln!(out, "    key: {}; {kept}", e.key.as_deref().unwrap_or("-"))?;
    writeln!(out, "    reason: {}", e.reason)?;
    let raw: String = e.raw.chars().take(RAW_CHARS).collect();
    let more = if e.raw.chars().count() > RAW_CHARS {
        "…"
    } else {
        ""
    };
    writeln!(out, "    row: {raw}{more}")
}
