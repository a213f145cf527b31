//! Witnessed history: the signing key, checkpoints issued, served and
//! delivered, `verify --checkpoint` against a rewritten store, a restored
//! store noticed, and proofs checked by the verifier agencies run without
//! liankong (deploy/verify-checkpoint.py).

mod support;

use std::path::Path;

fn liankong(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liankong"))
        .args(args)
        .current_dir(dir)
        .env_remove("LIANKONG_CONFIG")
        .env_remove("LIANKONG_STORE_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keygen_writes_a_private_key_once_and_key_prints_only_its_public_half() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = liankong(dir.path(), &["checkpoint", "keygen", "k.pem"]);
    assert_eq!(code, Some(0), "{err}");
    let private = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let mode = std::fs::metadata(dir.path().join("k.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = liankong::witness::SigningKey::from_pem(&private)
        .unwrap()
        .public();
    assert!(out.contains(&format!("key_id {}\n", key.key_id())), "{out}");
    assert!(out.contains(&key.pem()), "{out}");
    assert!(out.contains("[witness]\nkey = \"file:k.pem\""), "{out}");

    // Never over an existing key.
    let (code, _, err) = liankong(dir.path(), &["checkpoint", "keygen", "k.pem"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot write a new key to k.pem"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("k.pem")).unwrap(),
        private
    );

    let retired = liankong::witness::SigningKey::from_pem(
        &liankong::witness::SigningKey::generate_pem().unwrap(),
    )
    .unwrap()
    .public();
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            "[witness]\nkey = \"file:k.pem\"\nretired_keys = [{:?}]\n",
            retired.base64()
        ),
    )
    .unwrap();
    let (code, out, err) = liankong(dir.path(), &["--config", "c.toml", "checkpoint", "key"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "key_id {}\nbase64 {}\n{}retired key_id {} base64 {}\n",
            key.key_id(),
            key.base64(),
            key.pem(),
            retired.key_id(),
            retired.base64()
        )
    );
    let secret_line = private.lines().nth(1).unwrap();
    assert!(!out.contains(secret_line) && !err.contains(secret_line));

    std::fs::write(dir.path().join("none.toml"), "").unwrap();
    let (code, _, err) = liankong(dir.path(), &["--config", "none.toml", "checkpoint", "key"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no witness.key in the config"), "{err}");
}
