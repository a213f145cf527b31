use super::*;

#[test]
fn empty_config_has_defaults() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.store.url, "sqlite:liankong.db");
    assert_eq!(c.log.format, LogFormat::Auto);
}

#[test]
fn unknown_keys_and_bad_urls_are_errors() {
    let e = Config::parse("[store]\nurl = \"sqlite:x.db\"\npool = 3\n").unwrap_err();
    assert!(e.0.contains("unknown field `pool`"), "{e}");
    let e = Config::parse("[store]\nurl = \"mysql://x\"\n").unwrap_err();
    assert!(e.0.contains("is not sqlite:PATH"), "{e}");
}

#[test]
fn the_shipped_config_parses() {
    let text = include_str!("../../config/liankong.toml");
    Config::parse(text).unwrap();
}

#[test]
fn the_shipped_config_shows_every_section_and_names_only_files_that_exist() {
    let text = include_str!("../../config/liankong.toml");
    for section in [
        "[store]",
        "[log]",
        "[sync]",
        "[adapters.",
        "[rules.",
        "[alerts]",
        "[subscribers.",
        "[delivery]",
        "[api]",
        "[[api.tokens]]",
        "[witness]",
    ] {
        assert!(text.contains(section), "{section} is not shown");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/liankong.toml");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.adapters.len(), 5);
    for (name, a) in &c.adapters {
        assert!(a.manifest.is_file(), "{name}: {}", a.manifest.display());
        let files = a.tls.ca.iter().chain(&a.tls.client_cert).cloned();
        let secrets = a.secrets.values().chain(&a.tls.client_key);
        let secret_files = secrets.filter_map(|s| match s {
            SecretRef::File(p) => Some(p.clone()),
            _ => None,
        });
        for f in files.chain(secret_files) {
            assert!(f.is_file(), "{name} names {}", f.display());
        }
    }
    // Installed as deploy/README.md says: the manifests beside the config.
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir(etc.path().join("adapters")).unwrap();
    for (name, manifest) in crate::demo::MANIFESTS {
        std::fs::write(etc.path().join(format!("adapters/{name}.toml")), manifest).unwrap();
    }
    let installed = etc.path().join("liankong.toml");
    std::fs::write(&installed, text.replace("\"../adapters/", "\"adapters/")).unwrap();
    for (name, a) in &Config::load(&installed).unwrap().adapters {
        assert_eq!(a.manifest, etc.path().join(format!("adapters/{name}.toml")));
    }
}

#[test]
fn a_config_is_found_where_it_is_given_or_else_at_the_first_default() {
    let dir = tempfile::tempdir().unwrap();
    let there = dir.path().join("there.toml");
    std::fs::write(&there, "").unwrap();
    let missing = dir.path().join("missing.toml");
    let (there_s, missing_s) = (there.to_str().unwrap(), missing.to_str().unwrap());
    assert_eq!(locate(Some(&missing), &[there_s]).unwrap(), missing);
    assert_eq!(locate(None, &[missing_s, there_s]).unwrap(), there);
    let e = locate(None, &[missing_s, "/nonexistent/liankong.toml"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "no config file: neither {missing_s} nor /nonexistent/liankong.toml exists \
             (give one with --config PATH or LIANKONG_CONFIG)"
        )
    );
}

#[test]
fn relative_paths_are_the_config_files_own_and_the_store_stays_put() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liankong.toml");
    std::fs::write(
        &path,
        "[store]\nurl = \"sqlite:state/liankong.db\"\n\
         [adapters.a]\nmanifest = \"adapters/a.toml\"\nschedule = \"* * * * *\"\n\
         dir = \"../drop\"\nsecrets = { token = \"file:secrets/token\", key = \"env:K\" }\n\
         tls = { ca = \"/etc/ca.pem\", client_cert = \"client.pem\", client_key = \"file:client.key\" }\n\
         [subscribers.s]\nagency = \"npc\"\nurl = \"http://x\"\nsecrets = [\"file:whsec\"]\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    let d = dir.path();
    let a = &c.adapters["a"];
    assert_eq!(a.manifest, d.join("adapters/a.toml"));
    assert_eq!(a.dir.as_deref(), Some(d.join("../drop").as_path()));
    assert_eq!(a.secrets["token"], SecretRef::File(d.join("secrets/token")));
    assert_eq!(a.secrets["key"], SecretRef::Env("K".into()));
    assert_eq!(a.tls.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
    assert_eq!(
        a.tls.client_cert.as_deref(),
        Some(d.join("client.pem").as_path())
    );
    assert_eq!(
        a.tls.client_key,
        Some(SecretRef::File(d.join("client.key")))
    );
    assert_eq!(
        c.subscribers["s"].secrets,
        [SecretRef::File(d.join("whsec"))]
    );
    if std::env::var_os(STORE_URL_ENV).is_none() {
        assert_eq!(c.store.url, "sqlite:state/liankong.db");
    }
}

#[test]
fn schedules_that_never_fire_are_errors() {
    let c = |s: &str| {
        Config::parse(&format!(
            "[adapters.a]\nmanifest = \"m\"\nschedule = \"{s}\"\n"
        ))
    };
    assert!(c("*/15 * * * *").is_ok());
    assert!(c("0 30 7 * * Mon-Fri").is_ok());
    let e = c("0 0 30 2 *").unwrap_err();
    assert!(e.0.contains("never fires"), "{e}");
    let e = c("every day").unwrap_err();
    assert!(e.0.contains("not a cron expression"), "{e}");
}

#[test]
fn secrets_are_references_and_never_printed() {
    let e = Config::parse("[adapters.a]\nmanifest = \"m\"\nschedule = \"* * * * *\"\nsecrets = { token = \"hunter2\" }\n").unwrap_err();
    assert!(e.0.contains("a secret must be a reference"), "{e}");
    assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    let r = SecretRef::try_from("env:LIANKONG_TEST_NOT_SET_ANYWHERE".to_owned()).unwrap();
    assert!(r.read().unwrap_err().to_string().contains("is not set"));
}

#[test]
fn debug_hides_the_store_password() {
    let c = Config::parse("[store]\nurl = \"postgres://u:hunter2@h/db\"\n").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}
