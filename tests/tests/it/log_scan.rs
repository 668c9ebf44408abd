//! The log scan: representative end-to-end tests (the native platform with the generic webhook
//! provider, Chatlayer, Zendesk, Intercom and #Interact, each a full handover and back) run
//! again in a child process of this test binary, with every log event of the process captured
//! through the functions' own subscriber (`app::logging::install`) at `trace` — more verbose
//! than the functions' `LogLevel` parameter allows (it refuses `trace`), so the scan covers
//! every level a deployment can set. Then no signing secret, API token,
//! verify token, Authorization header value, signature value or message text of those tests may
//! appear.
//!
//! Without the cap on payload-logging crates in `app::logging`, this scan found 162 leaking
//! lines out of 74,747: at trace the AWS SDK logs every DynamoDB response body, transcripts
//! included.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The end-to-end tests that run under capture.
const MODULES: [&str; 5] = [
    "webhook_flow::",
    "chatlayer::",
    "provider_zendesk::",
    "provider_intercom::",
    "provider_interact::",
];

/// Secrets and tokens those tests configure (see their setup functions).
const SECRETS: &[&str] = &[
    "bot-secret",
    "desk-secret",
    // Zendesk: webhook secret, app key secret, and the Basic credentials made of the app key.
    "8564b3e6a8b20a4bdb68b05ce9bc5936",
    "s3cr3t",
    "YXBwX2tleV8xOnMzY3IzdA",
    // Intercom: access token and client secret.
    "tok-123",
    "cs-456",
    // Chatlayer: verify token and API token.
    "verify-me",
    "cl-api-token",
    // #Interact: API token and callback token.
    "itok-1",
    "cbtok-0123456789abcdef",
];

/// Shapes of credential values, whatever the secret: a header value must never be logged.
fn credential_shapes(line: &str) -> Option<&'static str> {
    let lower = line.to_ascii_lowercase();
    for (needle, what) in [
        ("bearer ", "a Bearer token"),
        ("basic ", "Basic credentials"),
        ("\"authorization\"", "an Authorization header"),
        // A header with its value (`name: value` or a JSON field); naming the header in a
        // reason ("X-API-Key does not match") carries no credential.
        ("x-api-key:", "an API key header"),
        ("\"x-api-key\"", "an API key header"),
        ("x-hub-signature:", "a signature header"),
        ("\"x-hub-signature\"", "a signature header"),
        ("sha1=", "a signature value"),
        ("sha256=", "a signature value"),
    ] {
        if lower.contains(needle) {
            return Some(what);
        }
    }
    // `v1=` followed by a hex HMAC-SHA256: an X-Handover-Signature value.
    let bytes = lower.as_bytes();
    for (i, _) in lower.match_indices("v1=") {
        let hex = bytes[i + 3..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if hex >= 64 {
            return Some("an X-Handover-Signature value");
        }
    }
    None
}

fn source(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The string literal that ends just before `end` in `src` (the last argument of a call).
fn last_literal_before(src: &str, end: usize) -> Option<String> {
    let head = &src[..end];
    let close = head.rfind('"')?;
    let open = head[..close].rfind('"')?;
    Some(head[open + 1..close].to_owned())
}

/// Every message text the captured tests send or receive: `"text": "…"` fields and the last
/// argument of `user_message(…)` / `bot_message(…)` in their sources, and every `text` in the
/// Chatlayer fixtures. Short texts ("Hi") are left out: they occur in unrelated words.
fn message_texts() -> Vec<String> {
    let mut texts = Vec::new();
    for m in MODULES {
        let src = source(&format!("tests/it/{}.rs", m.trim_end_matches("::")));
        texts.extend(text_fields(&src));
        for call in ["user_message(", "bot_message("] {
            for (i, _) in src.match_indices(call) {
                if let Some(close) = src[i..].find(')')
                    && let Some(t) = last_literal_before(&src, i + close)
                {
                    texts.push(t);
                }
            }
        }
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/chatlayer");
    for entry in std::fs::read_dir(fixtures).unwrap() {
        texts.extend(text_fields(&std::fs::read_to_string(entry.unwrap().path()).unwrap()));
    }
    texts.retain(|t| t.chars().count() >= 8 && !t.contains('\\') && !t.contains('{'));
    texts.sort();
    texts.dedup();
    texts
}

/// The values of `"text": "…"` fields, in Rust sources (`json!`) and JSON files alike.
fn text_fields(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in src.match_indices("\"text\":") {
        let rest = src[i + 7..].trim_start();
        if let Some(rest) = rest.strip_prefix('"')
            && let Some(end) = rest.find('"')
        {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[test]
fn end_to_end_runs_at_trace_level_log_no_secret_token_authorization_or_message_text() {
    let log: PathBuf = std::env::temp_dir().join(format!("handover-log-scan-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(MODULES)
        .args(["--test-threads=2", "--skip", "log_scan::"])
        .env("HANDOVER_TEST_LOG", &log)
        .env("HANDOVER_TEST_LOG_LEVEL", "trace")
        .output()
        .expect("the test binary runs itself");
    assert!(
        out.status.success(),
        "the end-to-end tests failed under log capture:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let passed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("test result: ok. ")
                .and_then(|r| r.split(' ').next()?.parse::<usize>().ok())
        })
        .unwrap_or(0);
    assert!(passed >= 20, "too few end-to-end tests ran under capture ({passed})");
    let captured = std::fs::read_to_string(&log).expect("log captured");
    let _ = std::fs::remove_file(&log);
    let lines: Vec<&str> = captured.lines().collect();
    // The capture saw the service, verbose events of the service included (its debug events).
    assert!(lines.len() >= 20, "only {} log lines captured", lines.len());
    assert!(
        lines.iter().any(|l| l.contains("\"message\":\"evaluator run\"")),
        "no event of the service captured"
    );
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "no debug event of the service captured: the level was not applied"
    );
    let texts = message_texts();
    assert!(texts.len() >= 15, "too few message texts found to look for: {texts:?}");
    let mut leaks = Vec::new();
    for line in &lines {
        for s in SECRETS {
            if line.contains(s) {
                leaks.push(format!("secret {s:?}: {line}"));
            }
        }
        for t in &texts {
            if line.contains(t.as_str()) {
                leaks.push(format!("message text {t:?}: {line}"));
            }
        }
        if let Some(what) = credential_shapes(line) {
            leaks.push(format!("{what}: {line}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} log lines leak:\n{}",
        leaks.len(),
        lines.len(),
        leaks
            .iter()
            .take(20)
            .map(|l| l.chars().take(600).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
