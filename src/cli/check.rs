//! `liankong check`: everything `once` and `run` would refuse before they
//! start, listed at once, and with `--connect` whether each source and the
//! store can be reached.

use std::io::Write;
use std::process::ExitCode;

use crate::adapter::{self, Adapter};
use crate::config::Config;
use crate::store;

/// Everything `once` and `run` would refuse before doing any work, all of
/// it rather than the first: the adapters (manifests, secrets, TLS files),
/// the subscribers (their secrets read and decoded), the store URL and the
/// API's own certificate and key.
pub(super) fn config_problems(
    config: &Config,
) -> (Vec<Adapter>, Vec<crate::deliver::Subscriber>, Vec<String>) {
    let mut problems = Vec::new();
    let adapters = adapter::build_all(config).unwrap_or_else(|errors| {
        problems.extend(errors.iter().map(ToString::to_string));
        Vec::new()
    });
    let mut subscribers = Vec::new();
    for (name, c) in &config.subscribers {
        match crate::deliver::Subscriber::build(name, c) {
            Ok(s) => subscribers.push(s),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Err(e) = crate::witness::config::public_keys(&config.witness) {
        problems.push(e.to_string());
    }
    let url = config.store_url();
    if let Err(e) = store::check_url(&url) {
        problems.push(format!("store.url {url}: {e}"));
    }
    if config.api.enabled
        && let (Some(cert), Some(key)) = (&config.api.tls_cert, &config.api.tls_key)
        && let Err(e) = crate::api::acceptor(cert, key)
    {
        problems.push(e.to_string());
    }
    (adapters, subscribers, problems)
}

/// Fails with every problem, one per line.
pub(super) fn refuse(problems: &[String]) -> anyhow::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!("the config has errors:\n  {}", problems.join("\n  "))
}

pub(super) async fn check(config: &Config, connect: bool) -> anyhow::Result<ExitCode> {
    let (adapters, subscribers, problems) = config_problems(config);
    refuse(&problems)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "config: ok ({} adapters enabled, {} disabled; {} subscribers)",
        adapters.len(),
        config.adapters.len() - adapters.len(),
        subscribers.len()
    )?;
    let mut failed = false;
    for (name, c) in config.adapters.iter().filter(|(_, c)| !c.enabled) {
        writeln!(
            out,
            "{name}: disabled (manifest {} valid)",
            c.manifest.display()
        )?;
    }
    for a in &adapters {
        writeln!(
            out,
            "{}: manifest {} ({}), schedule {:?}",
            a.name,
            a.manifest_path.display(),
            a.manifest.agency,
            a.schedule.as_str(),
        )?;
        if connect {
            for (stream, outcome) in a.check_connection().await {
                match outcome {
                    Ok(text) => writeln!(out, "  ok     {stream}: {text}")?,
                    Err(text) => {
                        failed = true;
                        writeln!(out, "  FAILED {stream}: {text}")?
                    }
                }
            }
        }
    }
    for s in &subscribers {
        writeln!(out, "subscriber {}: {} at {}", s.name, s.agency, s.url)?;
    }
    if config.api.enabled {
        writeln!(
            out,
            "api: {} ({} tokens{})",
            config.api.listen,
            config.api.tokens.len(),
            if config.api.tls() { ", TLS" } else { "" }
        )?;
    } else {
        writeln!(out, "api: disabled")?;
    }
    match crate::witness::Witness::load(&config.witness)? {
        Some(w) => writeln!(
            out,
            "witness: checkpoints signed by key {} at most every {} s ({} retired keys); \
             newest kept in {}",
            w.key.public().key_id(),
            w.interval.as_secs(),
            w.keys.len() - 1,
            w.state_file.display()
        )?,
        None => writeln!(
            out,
            "witness: no witness.key, so no checkpoint is issued and the agencies cannot \
             witness the history (liankong checkpoint keygen FILE makes a key)"
        )?,
    }
    let url = config.store_url();
    writeln!(out, "store: {url}")?;
    if connect {
        match reach_store(&url).await {
            Ok(text) => writeln!(out, "  ok     {text}")?,
            Err(text) => {
                failed = true;
                writeln!(out, "  FAILED {text}")?
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens the store without migrating it, and says how its schema stands.
/// A SQLite file that does not exist yet is not created here.
async fn reach_store(url: &store::StoreUrl) -> anyhow::Result<String> {
    if url.is_sqlite() {
        let file = store::sqlite_file(url)?;
        if !file.exists() {
            return Ok(format!(
                "{} does not exist yet: the first command that opens the store creates it",
                file.display()
            ));
        }
    }
    let store = store::open(url).await?;
    let schema = match store.readiness().await {
        Ok(()) => "every migration applied".to_owned(),
        Err(e) => format!("not ready ({e}); run and migrate apply the migrations"),
    };
    store.close().await;
    Ok(format!("reached, {schema}"))
}
