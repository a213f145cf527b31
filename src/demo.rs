//! Pointing a daemon at the built-in simulator: the config that reaches all
//! five simulated systems, with its secret files, for `liankong sim`,
//! `liankong demo` and the tests.

use std::path::{Path, PathBuf};

use crate::sim::{CREDENTIALS, Simulator};

/// How the generated config should pull.
#[derive(Debug, Clone)]
pub struct SimConfigOptions {
    /// The store URL to write into the config.
    pub store_url: String,
    /// Where the shipped manifests are (the repository's `adapters/`).
    pub manifests: PathBuf,
    /// Fast retries for tests; the defaults otherwise.
    pub quick_retries: bool,
}

/// The repository's `adapters/` directory, as built.
pub fn shipped_manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters")
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Writes the simulator's secrets as files under `<sim dir>/secrets/` and
/// returns the text of a daemon config that reaches all five systems.
pub fn sim_config(sim: &Simulator, options: &SimConfigOptions) -> std::io::Result<String> {
    let secrets = sim.dir().join("secrets");
    std::fs::create_dir_all(&secrets)?;
    let secret = |name: &str, value: &str| -> std::io::Result<String> {
        let path = secrets.join(name);
        std::fs::write(&path, value)?;
        Ok(toml_str(&format!("file:{}", path.display())))
    };
    let finance_id = secret("finance_client_id", CREDENTIALS.finance_client_id)?;
    let finance_secret = secret("finance_client_secret", CREDENTIALS.finance_client_secret)?;
    let npc_key = secret("npc_api_key", CREDENTIALS.npc_api_key)?;
    let discipline_token = secret("discipline_token", CREDENTIALS.discipline_token)?;
    let pki = sim.pki_dir();
    let client_key = toml_str(&format!("file:{}", pki.join("client.key").display()));
    let manifest = |name: &str| toml_str(&options.manifests.join(name).display().to_string());
    let path = |p: PathBuf| toml_str(&p.display().to_string());
    let retries = if options.quick_retries {
        "[sync]\nretry_attempts = 5\nretry_min_delay_ms = 10\nretry_max_delay_ms = 200\n\n"
    } else {
        ""
    };
    Ok(format!(
        "# Generated for the built-in simulator in {dir}.\n\
         [store]\nurl = {store}\n\n{retries}\
         [adapters.finance]\nmanifest = {fm}\nschedule = \"*/5 * * * *\"\nbase_url = {fu}\n\
         secrets = {{ client_id = {finance_id}, client_secret = {finance_secret} }}\n\n\
         [adapters.npc]\nmanifest = {nm}\nschedule = \"*/5 * * * *\"\nbase_url = {nu}\n\
         secrets = {{ api_key = {npc_key} }}\n\n\
         [adapters.audit]\nmanifest = {am}\nschedule = \"*/5 * * * *\"\ndir = {ad}\n\n\
         [adapters.discipline]\nmanifest = {dm}\nschedule = \"*/5 * * * *\"\nbase_url = {du}\n\
         secrets = {{ token = {discipline_token} }}\n\
         tls = {{ ca = {ca}, client_cert = {cert}, client_key = {client_key} }}\n\n\
         [adapters.orgdept]\nmanifest = {om}\nschedule = \"*/5 * * * *\"\ndir = {od}\n",
        dir = sim.dir().display(),
        store = toml_str(&options.store_url),
        fm = manifest("finance.toml"),
        fu = toml_str(&sim.finance_url()),
        nm = manifest("npc.toml"),
        nu = toml_str(&sim.npc_url()),
        am = manifest("audit.toml"),
        ad = path(sim.audit_dir()),
        dm = manifest("discipline.toml"),
        du = toml_str(&sim.discipline_url()),
        ca = path(pki.join("ca.pem")),
        cert = path(pki.join("client.pem")),
        om = manifest("orgdept.toml"),
        od = path(sim.orgdept_dir()),
    ))
}
