//! `liankong checkpoint …`: the signing key's public half for agencies to
//! pin, a new key, and the checkpoints this deployment issued.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::witness::{SigningKey, Witness};

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Print the public key of witness.key (PEM, base64 and key id) for
    /// the agencies to pin, and the retired keys still accepted.
    Key,
    /// Write a new Ed25519 signing key to FILE (PKCS#8 PEM, mode 0600;
    /// never over an existing file) and print its public key.
    Keygen { file: PathBuf },
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

pub(super) fn checkpoint(
    out: &mut dyn Write,
    config: &Config,
    command: CheckpointCommand,
) -> anyhow::Result<ExitCode> {
    match command {
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
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
