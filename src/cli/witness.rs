//! `liankong checkpoint …`: the signing key's public half for agencies to
//! pin, a new key, and the checkpoints this deployment issued.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::store::Store;
use crate::witness::verify::{check_kept, read_checkpoints};
use crate::witness::{SigningKey, Witness, state};

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Print the public key of witness.key (PEM, base64 and key id) for
    /// the agencies to pin, and the retired keys still accepted.
    Key,
    /// Write a new Ed25519 signing key to FILE (PKCS#8 PEM, mode 0600;
    /// never over an existing file) and print its public key.
    Keygen { file: PathBuf },
    /// Accept that the store was restored from a backup older than the
    /// newest checkpoint this machine saw: say how far behind it is, number
    /// the next checkpoint after the lost ones, and let `run` and `once`
    /// start again.
    AcceptRestore,
}

impl CheckpointCommand {
    /// `keygen` runs anywhere, with no config.
    pub fn needs_config(&self) -> bool {
        !matches!(self, CheckpointCommand::Keygen { .. })
    }

    /// `key` and `keygen` do not open the store.
    pub fn needs_store(&self) -> bool {
        !matches!(
            self,
            CheckpointCommand::Key | CheckpointCommand::Keygen { .. }
        )
    }
}

pub(super) async fn checkpoint(
    out: &mut dyn Write,
    config: &Config,
    store: Option<&dyn Store>,
    command: CheckpointCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        CheckpointCommand::AcceptRestore => {
            let store = store.context("accept-restore needs the store")?;
            let Some(witness) = Witness::load(&config.witness)? else {
                anyhow::bail!("no witness.key in the config: there are no checkpoints");
            };
            match state::accept_restore(store, &witness).await? {
                None => writeln!(
                    out,
                    "the store extends the newest checkpoint this machine saw: nothing to accept"
                )?,
                Some(a) => {
                    writeln!(
                        out,
                        "restore accepted: the store no longer extends checkpoint {}",
                        a.lost.checkpoint_id
                    )?;
                    for p in &a.problems {
                        writeln!(out, "  {p}")?;
                    }
                    writeln!(
                        out,
                        "the next checkpoint is numbered after {}; {} is this machine's newest now.\n\
                         Tell the agencies: their checkpoints from {} on no longer verify against \
                         this store.",
                        a.lost.checkpoint_id,
                        a.newest
                            .map_or("none".to_owned(), |n| format!("checkpoint {n}")),
                        a.newest.map_or(1, |n| n + 1)
                    )?;
                }
            }
        }
        CheckpointCommand::Key => {
            let Some(witness) = Witness::load(&config.witness)? else {
                anyhow::bail!("no witness.key in the config: checkpoints are not signed");
            };
            let public = witness.key.public();
            writeln!(out, "key_id {}", public.key_id())?;
            writeln!(out, "base64 {}", public.base64())?;
            write!(out, "{}", public.pem())?;
            for retired in &witness.keys[1..] {
                writeln!(
                    out,
                    "retired key_id {} base64 {}",
                    retired.key_id(),
                    retired.base64()
                )?;
            }
        }
        CheckpointCommand::Keygen { file } => {
            let pem = SigningKey::generate_pem()?;
            let key = SigningKey::from_pem(&pem)?;
            write_private(&file, &pem)
                .with_context(|| format!("cannot write a new key to {}", file.display()))?;
            let public = key.public();
            writeln!(
                out,
                "wrote a new signing key to {} (mode 0600)",
                file.display()
            )?;
            writeln!(out, "key_id {}", public.key_id())?;
            writeln!(out, "base64 {}", public.base64())?;
            write!(out, "{}", public.pem())?;
            writeln!(
                out,
                "\nadd to the config:\n[witness]\nkey = \"file:{}\"",
                file.display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The witnessed part of `verify`: the store against the checkpoints in
/// `files`, or without any, against the newest checkpoint the store and
/// this machine's state file hold. Prints what it found; false when the
/// store does not extend one, or one does not verify.
pub(super) async fn verify_witnessed(
    out: &mut dyn Write,
    store: &dyn Store,
    config: &Config,
    files: &[PathBuf],
) -> anyhow::Result<bool> {
    let keys = crate::witness::config::public_keys(&config.witness)?;
    let mut kept = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read checkpoints from {}", f.display()))?;
        kept.extend(read_checkpoints(&text).with_context(|| f.display().to_string())?);
    }
    if files.is_empty() {
        if keys.is_empty() {
            return Ok(true);
        }
        kept.extend(
            store
                .checkpoints(crate::witness::Audience::All, None, 1)
                .await?,
        );
        if let Some(c) = state::read(&config.witness.state_file)? {
            writeln!(
                out,
                "this machine's newest checkpoint: {} ({})",
                c.checkpoint_id,
                config.witness.state_file.display()
            )?;
            kept.push(c);
        }
        if kept.is_empty() {
            return Ok(true);
        }
    } else if keys.is_empty() {
        anyhow::bail!(
            "no key to check checkpoints with: the config has no witness.key nor witness.retired_keys"
        );
    }
    let report = check_kept(store, &kept, &keys).await?;
    if report.problems.is_empty() {
        writeln!(
            out,
            "witnessed: the store extends all {} checkpoints checked",
            report.checked
        )?;
        return Ok(true);
    }
    writeln!(
        out,
        "NOT WITNESSED: of {} checkpoints checked, the store extends {}",
        report.checked, report.extended
    )?;
    for p in &report.problems {
        writeln!(out, "  {p}")?;
    }
    Ok(false)
}

/// What `once` says of the checkpoint it issued, or why it issued none.
pub(super) fn print_issued(
    out: &mut dyn Write,
    issued: Option<crate::witness::Issued>,
) -> std::io::Result<()> {
    use crate::witness::Issued;
    match issued {
        None => Ok(()),
        Some(Issued::Unchanged) => {
            writeln!(out, "\ncheckpoint: none, history unchanged since the last")
        }
        Some(Issued::NotDue { due_at }) => writeln!(
            out,
            "\ncheckpoint: due at {} (witness.checkpoint_interval_secs after the last)",
            crate::clock::rfc3339(due_at)
        ),
        Some(Issued::Issued {
            id,
            streams,
            events,
        }) => writeln!(
            out,
            "\ncheckpoint {id} issued: {streams} streams, {events} events queued"
        ),
    }
}

/// Creates `path` readable by its owner only, refusing to replace a file.
pub(super) fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
