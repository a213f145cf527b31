//! `[witness]`: the deployment's checkpoint signing key, how often
//! checkpoints are issued, the retired keys whose checkpoints still verify,
//! and where this machine remembers the newest checkpoint it saw.
//!
//! The signing key is read through a secret reference (a file, or a
//! systemd credential) and is never printed, logged or sent; only its
//! public half and key id are.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::key::{KeyError, PublicKey, SigningKey};
use crate::config::{SecretError, SecretRef};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessConfig {
    /// The Ed25519 signing key (a PKCS#8 PEM file, from
    /// `liankong checkpoint keygen FILE` or `openssl genpkey -algorithm
    /// ed25519`) as a reference: `file:/path` (relative: to the config
    /// file's directory), `credential:NAME` (a systemd credential) or
    /// `env:VAR`. Without it no checkpoint is issued.
    pub key: Option<SecretRef>,
    /// At most one checkpoint this often: a run committed within the
    /// interval after a checkpoint is covered by the next one, issued when
    /// the interval is over. 0 issues one after every run that changed the
    /// history.
    pub checkpoint_interval_secs: u64,
    /// The public keys of retired signing keys (base64 of their 32 bytes, or
    /// PEM), so that the checkpoints they signed still verify after a
    /// rotation.
    pub retired_keys: Vec<String>,
    /// A file of more retired public keys: PEM blocks and base64 lines,
    /// `#` comments (relative: to the config file's directory).
    pub retired_keys_file: Option<PathBuf>,
    /// Where this machine keeps a copy of the newest checkpoint it has seen,
    /// so that a store restored from a backup older than it is noticed at
    /// start. Relative: to the working directory, like `sqlite:` store paths
    /// (under systemd, the unit's StateDirectory).
    pub state_file: PathBuf,
}

impl Default for WitnessConfig {
    fn default() -> WitnessConfig {
        WitnessConfig {
            key: None,
            checkpoint_interval_secs: 3600,
            retired_keys: Vec::new(),
            retired_keys_file: None,
            state_file: PathBuf::from("last-checkpoint.json"),
        }
    }
}

impl WitnessConfig {
    /// Makes the files it names relative to `dir` (the config file's
    /// directory); the state file stays relative to the working directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        if let Some(SecretRef::File(p)) = &mut self.key
            && p.is_relative()
        {
            *p = dir.join(&*p);
        }
        if let Some(p) = &mut self.retired_keys_file
            && p.is_relative()
        {
            *p = dir.join(&*p);
        }
    }
}

/// Why the witness cannot be set up. Names where a key was read from,
/// never the key.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("witness.key: {0}")]
    Unreadable(#[from] SecretError),
    #[error("witness.key {reference}: {error}")]
    BadKey { reference: String, error: KeyError },
    #[error("witness.retired_keys: {0}")]
    BadRetired(KeyError),
    #[error("cannot read witness.retired_keys_file {path}: {source}")]
    RetiredFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The running witness: the key checkpoints are signed with, and the keys
/// they are checked against.
#[derive(Debug)]
pub struct Witness {
    pub key: SigningKey,
    /// The current public key first, then the retired ones.
    pub keys: Vec<PublicKey>,
    pub interval: Duration,
    pub state_file: PathBuf,
}

impl Witness {
    /// Reads the signing key and the retired keys; `None` when no key is
    /// configured.
    pub fn load(c: &WitnessConfig) -> Result<Option<Witness>, WitnessError> {
        let Some(reference) = &c.key else {
            return Ok(None);
        };
        let pem = reference.read()?;
        let key = SigningKey::from_pem(pem.expose()).map_err(|error| WitnessError::BadKey {
            reference: reference.to_string(),
            error,
        })?;
        let mut keys = vec![key.public()];
        for k in retired_keys(c)? {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        Ok(Some(Witness {
            key,
            keys,
            interval: Duration::from_secs(c.checkpoint_interval_secs),
            state_file: c.state_file.clone(),
        }))
    }
}

/// The public keys checkpoints are checked against: the signing key's
/// (when one is configured) and the retired ones.
pub fn public_keys(c: &WitnessConfig) -> Result<Vec<PublicKey>, WitnessError> {
    match Witness::load(c)? {
        Some(w) => Ok(w.keys),
        None => retired_keys(c),
    }
}

fn retired_keys(c: &WitnessConfig) -> Result<Vec<PublicKey>, WitnessError> {
    let mut keys = Vec::new();
    for text in &c.retired_keys {
        keys.push(PublicKey::parse(text).map_err(WitnessError::BadRetired)?);
    }
    if let Some(path) = &c.retired_keys_file {
        let text = std::fs::read_to_string(path).map_err(|source| WitnessError::RetiredFile {
            path: path.clone(),
            source,
        })?;
        keys.extend(parse_keys(&text).map_err(WitnessError::BadRetired)?);
    }
    Ok(keys)
}

/// The public keys in a text of PEM blocks and base64 lines.
pub fn parse_keys(text: &str) -> Result<Vec<PublicKey>, KeyError> {
    let mut keys = Vec::new();
    let mut pem: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match &mut pem {
            Some(block) => {
                block.push_str(line);
                block.push('\n');
                if line.starts_with("-----END") {
                    keys.push(PublicKey::parse(block)?);
                    pem = None;
                }
            }
            None if line.starts_with("-----BEGIN") => pem = Some(format!("{line}\n")),
            None => keys.push(PublicKey::parse(line)?),
        }
    }
    match pem {
        Some(block) => Err(KeyError::NotAPublicKey(block.chars().take(80).collect())),
        None => Ok(keys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_through_its_reference_and_retired_keys_join_it() {
        let dir = tempfile::tempdir().unwrap();
        let pem = SigningKey::generate_pem().unwrap();
        std::fs::write(dir.path().join("k.pem"), &pem).unwrap();
        let old = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let older = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        std::fs::write(
            dir.path().join("retired.pem"),
            format!("# rotated 2026-11\n{}\n", older.public().pem()),
        )
        .unwrap();
        let text = format!(
            "key = \"file:k.pem\"\nretired_keys = [{:?}]\nretired_keys_file = \"retired.pem\"\n",
            old.public().base64()
        );
        let mut c: WitnessConfig = toml::from_str(&text).unwrap();
        c.resolve_paths(dir.path());
        let w = Witness::load(&c).unwrap().unwrap();
        let signing = SigningKey::from_pem(&pem).unwrap().public();
        assert_eq!(w.keys, vec![signing, old.public(), older.public()]);
        assert_eq!(w.interval, Duration::from_secs(3600));
        assert_eq!(w.state_file, PathBuf::from("last-checkpoint.json"));
        // Its Debug shows the public key's id, never the private key.
        assert!(!format!("{w:?}").contains(pem.lines().nth(1).unwrap()));

        // No key: no witness, and the retired keys still check.
        c.key = None;
        assert!(Witness::load(&c).unwrap().is_none());
        assert_eq!(public_keys(&c).unwrap(), vec![old.public(), older.public()]);

        // A key that is not one is named by its reference, and its text
        // is never shown.
        std::fs::write(dir.path().join("bad.pem"), "hunter2").unwrap();
        c.key = Some(SecretRef::File(dir.path().join("bad.pem")));
        let e = Witness::load(&c).unwrap_err().to_string();
        assert!(e.starts_with("witness.key file:"), "{e}");
        assert!(
            e.ends_with("bad.pem: not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)"),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
        assert!(parse_keys("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
    }
}
