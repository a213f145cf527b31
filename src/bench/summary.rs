//! The summary of a benchmark run: every scale's figures, the ratios and
//! the targets they are judged by.

use std::io::Write;

use super::delivery::Delivery;
use super::scale::{
    FLAT_FACTOR, Phase, ScaleReport, TARGET_DAY_OVER_BASELINE, TARGET_DELIVERY_OVER_BASELINE,
    TARGET_FULL_OVER_BASELINE, TARGET_FULL_OVER_BASELINE_POSTGRES, TARGET_PEAK_BYTES,
    TARGET_RECONCILE_OVER_BASELINE, TARGET_UNCHANGED_OVER_BASELINE, TARGET_WAL_BYTES, ratio,
};

pub(super) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub(super) fn show(p: &Phase) -> String {
    format!(
        "{:7.1} s (sync {:.1} s, reconcile {:.1} s; {} rows fetched, {} written, {} findings), peak {:.0} MiB (sync {:.0} MiB), WAL {:.0} MiB",
        p.seconds,
        p.sync_seconds,
        p.reconcile_seconds,
        p.fetched,
        p.written,
        p.findings,
        mib(p.peak_kib),
        mib(p.sync_peak_kib),
        mib(p.wal_bytes / 1024)
    )
}

/// Phase (g) on one line: what was raised, written and received, and when.
pub(super) fn show_delivery(d: &Delivery) -> String {
    let per_agency: Vec<String> = d
        .received
        .iter()
        .map(|(agency, r)| format!("{agency} {}", r.events))
        .collect();
    format!(
        "{:.1} s after the reconcile's end ({:.1} s of delivery, {:.0} webhooks/s): {} alerts raised, {} outbox events, {} received ({}), {} bad signatures, {} duplicates, {} undelivered; peak {:.0} MiB",
        d.after_reconcile_seconds,
        d.seconds,
        d.webhooks_per_second(),
        d.alerts_raised,
        d.outbox_events,
        d.events_received(),
        per_agency.join(", "),
        d.bad_signatures(),
        d.received.iter().map(|(_, r)| r.duplicates).sum::<u64>(),
        d.undelivered,
        mib(d.peak_kib)
    )
}

/// Prints the figures of every scale, the ratios and the targets.
pub fn print_summary(out: &mut dyn Write, reports: &[ScaleReport]) -> std::io::Result<()> {
    let met = |ok: bool| if ok { "met" } else { "NOT MET" };
    for r in reports {
        writeln!(
            out,
            "\nscale {} on {} ({} units, {} projects)",
            r.scale, r.backend, r.volumes.units, r.volumes.projects
        )?;
        for (stream, n) in &r.streams {
            writeln!(out, "  {stream:<24}{n:>10} rows")?;
        }
        let rows = [
            ("(a) full sync + reconcile", r.full.seconds),
            ("    of which sync", r.full.sync_seconds),
            ("    of which reconcile", r.full.reconcile_seconds),
            ("(b) the same, nothing changed", r.unchanged.seconds),
            ("    of which sync", r.unchanged.sync_seconds),
            ("(c) reconcile alone", r.reconcile.seconds),
            ("(f) a day's changes", r.day.seconds),
            ("    of which sync", r.day.sync_seconds),
            ("(e) sqlite3 shell baseline", r.baseline.seconds),
        ];
        for (label, s) in rows {
            writeln!(out, "  {label:<32}{s:>9.1} s")?;
        }
        if let Some(d) = &r.delivery {
            if let Some(p) = &r.planted {
                writeln!(
                    out,
                    "  planted: {} slow, {} idle, {} mirror and {} approval mismatches",
                    p.slow, p.idle, p.mirror, p.approved
                )?;
            }
            writeln!(
                out,
                "  {:<32}{:>9.1} s  after (a)'s reconcile; {} alerts, {} outbox events, {} received, {:.0} webhooks/s",
                "(g) its alerts' webhooks",
                d.after_reconcile_seconds,
                d.alerts_raised,
                d.outbox_events,
                d.events_received(),
                d.webhooks_per_second()
            )?;
        }
        writeln!(
            out,
            "  {:<32}{:>9.0} MiB  (a) {:.0}, (b) {:.0}, (c) {:.0}, (f) {:.0}{}{}",
            "(d) peak resident memory",
            mib(r.peak_kib()),
            mib(r.full.peak_kib),
            mib(r.unchanged.peak_kib),
            mib(r.reconcile.peak_kib),
            mib(r.day.peak_kib),
            r.delivery
                .as_ref()
                .map(|d| format!(", (g) {:.0}", mib(d.peak_kib)))
                .unwrap_or_default(),
            if r.peak_per_phase {
                ""
            } else {
                " (not reset between phases)"
            }
        )?;
        let full_target = if r.backend == "postgres" {
            TARGET_FULL_OVER_BASELINE_POSTGRES
        } else {
            TARGET_FULL_OVER_BASELINE
        };
        writeln!(
            out,
            "  (a)/(e) ≤ {full_target}: {:.2}, {}",
            r.full_over_baseline(),
            met(r.full_over_baseline() <= full_target)
        )?;
        writeln!(
            out,
            "  (b)/(e) ≤ {TARGET_UNCHANGED_OVER_BASELINE}: {:.2}, {}",
            r.unchanged_over_baseline(),
            met(r.unchanged_over_baseline() <= TARGET_UNCHANGED_OVER_BASELINE)
        )?;
        writeln!(
            out,
            "  (c)/(e) ≤ {TARGET_RECONCILE_OVER_BASELINE}: {:.2}, {}",
            r.reconcile_over_baseline(),
            met(r.reconcile_over_baseline() <= TARGET_RECONCILE_OVER_BASELINE)
        )?;
        writeln!(
            out,
            "  (f)/(e) ≤ {TARGET_DAY_OVER_BASELINE}: {:.2}, {}",
            r.day_over_baseline(),
            met(r.day_over_baseline() <= TARGET_DAY_OVER_BASELINE)
        )?;
        if let Some(g) = r.delivery_over_baseline() {
            writeln!(
                out,
                "  (g)/(e) ≤ {TARGET_DELIVERY_OVER_BASELINE}: {g:.2}, {}",
                met(g <= TARGET_DELIVERY_OVER_BASELINE)
            )?;
        }
        writeln!(
            out,
            "  WAL ≤ 1 GiB: {:.0} MiB, {}",
            mib(r.wal_bytes() / 1024),
            met(r.wal_bytes() <= TARGET_WAL_BYTES)
        )?;
        writeln!(
            out,
            "  memory ≤ 512 MiB: {:.0} MiB, {}",
            mib(r.peak_kib()),
            met(r.peak_kib() * 1024 <= TARGET_PEAK_BYTES)
        )?;
    }
    if reports.len() > 1 {
        let by_scale = |pick: fn(&ScaleReport) -> u64| -> Vec<String> {
            reports
                .iter()
                .map(|r| format!("{:.0} MiB at scale {}", mib(pick(r)), r.scale))
                .collect()
        };
        let smallest = reports
            .iter()
            .min_by(|a, b| a.scale.total_cmp(&b.scale))
            .map(ScaleReport::peak_kib)
            .unwrap_or(0);
        let largest = reports
            .iter()
            .max_by(|a, b| a.scale.total_cmp(&b.scale))
            .map(ScaleReport::peak_kib)
            .unwrap_or(0);
        let growth = ratio(largest as f64, smallest as f64);
        writeln!(
            out,
            "\npeak memory {}; the first full sync alone {}; largest over smallest scale {growth:.2}: flat (≤ {FLAT_FACTOR}×) {}",
            by_scale(ScaleReport::peak_kib).join(", "),
            by_scale(|r| r.full.sync_peak_kib).join(", "),
            met(growth <= FLAT_FACTOR)
        )?;
    }
    Ok(())
}
