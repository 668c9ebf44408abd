//! Checks on the suite itself: every error code docs/api.md documents is produced and asserted
//! by some test, and the mock helpers cannot report "nothing received" unchecked.

use std::collections::BTreeSet;
use std::path::Path;

use handover_tests::*;

/// The codes of docs/api.md's error tables (bot routes and provider callbacks).
fn documented_codes() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(format!("{}/../docs/api.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // | status | `code` | when | …
            let status: u16 = cells.get(1)?.parse().ok()?;
            let code = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            (400..600).contains(&status).then(|| code.to_owned())
        })
        .collect()
}

fn test_sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            test_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("honesty.rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// A code counts as tested when a test compares an answer's code with it: the quoted code on a
/// line that reads or names a `code` (`body["error"]["code"]`, `code: "…"` of a case table,
/// `code(&answer)`, `api.code`).
#[test]
fn every_documented_error_code_is_asserted_by_a_test() {
    let codes = documented_codes();
    for wanted in [
        "unavailable",
        "unknown_route",
        "no_route",
        "empty_message",
        "unknown_session",
        "invalid_callback",
    ] {
        assert!(codes.contains(wanted), "docs/api.md's tables were not read: {codes:?}");
    }
    let mut sources = Vec::new();
    test_sources(
        Path::new(&format!("{}/tests", env!("CARGO_MANIFEST_DIR"))),
        &mut sources,
    );
    let untested: Vec<&String> = codes
        .iter()
        .filter(|code| {
            let quoted = format!("\"{code}\"");
            !sources
                .iter()
                .any(|(_, text)| text.lines().any(|l| l.contains(&quoted) && l.contains("code")))
        })
        .collect();
    assert!(
        untested.is_empty(),
        "documented error codes no test asserts: {untested:?}"
    );
}

/// `recorded` (behind `received`, `requests_to` and the providers' helpers) refuses to answer
/// for a server that does not record: "nothing was sent" must never be an empty default.
#[tokio::test]
#[should_panic(expected = "the mock server records requests")]
async fn a_mock_that_does_not_record_cannot_report_nothing_received() {
    let server = wiremock::MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    recorded(&server).await;
}

#[tokio::test]
async fn a_recording_mock_reports_what_it_received() {
    let server = wiremock::MockServer::start().await;
    assert!(recorded(&server).await.is_empty());
    reqwest::Client::new()
        .post(format!("{}/x", server.uri()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(recorded(&server).await.len(), 1);
    assert_eq!(received(&server).await, [serde_json::json!({})]);
}
