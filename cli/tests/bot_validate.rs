//! `handover bot validate` on documents with wrong provider settings: each error is printed
//! with its path in the document, and the command fails. Nothing here needs AWS.

use std::path::PathBuf;
use std::process::{Command, Output};

fn document(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("handover-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn validate(path: &std::path::Path) -> Output {
    validate_with(&[], path)
}

fn validate_with(flags: &[&str], path: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_handover"))
        .args(flags)
        .args(["bot", "validate"])
        .arg(path)
        .env_remove("HANDOVER_ALLOW_LOCAL_URLS")
        .output()
        .expect("the CLI runs")
}

const HEAD: &str = "botId: acme
platform: { kind: native, outboundUrl: 'https://bot.example.com/h', secretRef: acme/platform }
routing:
  - { provider: desk, queue: Support_NL }
";

#[test]
fn a_bad_provider_setting_is_named_by_its_path_and_fails_the_command() {
    let path = document(
        "bad-mailbox.yaml",
        &format!(
            "{HEAD}providers:
  - {{ id: backup, kind: webhook, url: 'https://desk.example.com/h', secretRef: acme/backup }}
  - id: desk
    kind: helpscout
    secretRef: acme/helpscout
    mailboxes: {{ Support_NL: support }}
"
        ),
    );
    let out = validate(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}; stderr: {stderr}", out.status);
    assert!(
        stderr.contains("providers[1].mailboxes.Support_NL: must be a Help Scout mailbox id (a number)"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing is reported as valid");
}

#[test]
fn an_unknown_provider_field_and_a_core_error_are_reported_together() {
    let path = document(
        "typo.yaml",
        &format!(
            "{HEAD}providers:
  - id: desk
    kind: zendesk
    secretRef: ''
    appId: app-1
    subdomain: acme
    agentSourceType: [zd:agentWorkspace]
"
        ),
    );
    let out = validate(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("providers[0].secretRef: must name a Secrets Manager secret"),
        "{stderr}"
    );
    assert!(
        stderr.contains("providers[0].agentSourceType: unknown field `agentSourceType`, expected one of"),
        "{stderr}"
    );
}

#[test]
fn a_good_document_is_valid() {
    let path = document(
        "good.yaml",
        &format!(
            "{HEAD}providers:
  - id: desk
    kind: helpscout
    secretRef: acme/helpscout
    mailboxes: {{ Support_NL: 85 }}
"
        ),
    );
    let out = validate(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid configuration for bot acme"));
    // The demo bot is the local server's: valid with its flag, refused without it.
    let demo = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo-bot.yaml"));
    let out = validate_with(&["--allow-local-urls"], demo);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = validate(demo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("platform.outboundUrl: \"http://127.0.0.1:3000/playground/bot\" must"),
        "{stderr}"
    );
}

#[test]
fn urls_and_configurations_that_cannot_work_are_named_by_field() {
    let path = document(
        "unsafe.yaml",
        "botId: acme
platform:
  kind: chatlayer
  secretRef: acme/platform
  apiBaseUrl: 'http://169.254.169.254/latest/meta-data/'
  pauseAction: { pauseBot: true }
providers:
  - { id: desk, kind: webhook, url: 'http://desk.example.com/h?key=k9', secretRef: acme/desk }
routing:
  - { provider: desk, queue: general }
timeouts: { agentIdleSeconds: 259200 }
retentionDays: 2
",
    );
    for flags in [&[][..], &["--allow-local-urls"][..]] {
        let out = validate_with(flags, &path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        for expected in [
            "platform.apiBaseUrl: \"http://169.254.169.254/latest/meta-data/\" must not name a link-local address",
            "platform.resumeAction: is required when pauseAction is set",
            "retentionDays: 2 days is shorter than the longest timeout (259200 s)",
        ] {
            assert!(stderr.contains(expected), "{flags:?}: {expected} in {stderr}");
        }
        assert!(!stderr.contains("k9"), "no query in the output: {stderr}");
    }
    let out = validate(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("providers[0].url: \"http://desk.example.com/h\" must be https"),
        "plain http without the local flag: {stderr}"
    );
}
