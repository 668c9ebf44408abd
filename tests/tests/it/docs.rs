//! The documentation's examples and tables are checked against the code.

use std::collections::BTreeSet;

use handover::app::routes::ROUTES;
use handover::config::{BotConfig, Document, ProviderConfig, ProviderKind};
use handover::platform::native::NativeEvent;
use handover::providers::{self, Callback, CallbackRequest};
use handover::secrets::Secret;
use handover::url_policy::UrlPolicy;
use serde_yaml_ng::Value as Yaml;
use strum::IntoEnumIterator;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn openapi() -> Yaml {
    serde_yaml_ng::from_str(&read("docs/openapi.yaml")).expect("docs/openapi.yaml is YAML")
}

#[test]
fn openapi_documents_exactly_the_http_routes() {
    let doc = openapi();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let m = method.as_str().unwrap();
            if ["get", "head", "post", "put", "patch", "delete"].contains(&m) {
                documented.insert((m.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
}

/// Every example value of a request body at `path` / `method`.
fn request_examples(doc: &Yaml, path: &str, method: &str) -> Vec<serde_json::Value> {
    let examples = &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["examples"];
    examples
        .as_mapping()
        .map(|m| m.values().map(|e| serde_json::to_value(&e["value"]).unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn openapi_request_examples_are_accepted_by_the_parsers() {
    let doc = openapi();
    let native = request_examples(&doc, "/v1/bots/{botId}/events", "post");
    assert!(
        native.len() >= 3,
        "message, handover.request and handover.cancel examples"
    );
    for ex in native {
        let event: NativeEvent = serde_json::from_value(ex.clone()).unwrap_or_else(|e| panic!("{ex}: {e}"));
        event.into_input().unwrap_or_else(|e| panic!("{ex}: {e}"));
    }

    let config: ProviderConfig = serde_json::from_value(serde_json::json!({
        "id": "desk", "kind": "webhook", "url": "https://desk.example.com", "secretRef": "x"
    }))
    .unwrap();
    let secret = Secret::from_json(r#"{"signingSecret":"s"}"#).unwrap();
    let provider = providers::build(&config, &secret, reqwest::Client::new()).unwrap();
    let callbacks = request_examples(&doc, "/v1/bots/{botId}/providers/{providerId}/callback", "post");
    assert!(!callbacks.is_empty());
    let headers = lambda_http::http::HeaderMap::new();
    for ex in callbacks {
        let body = serde_json::to_vec(&ex).unwrap();
        let req = CallbackRequest {
            method: "POST",
            headers: &headers,
            query: &[],
            body: &body,
        };
        match provider.parse_callback(&req).unwrap_or_else(|e| panic!("{ex}: {e}")) {
            Callback::Events(events) => assert!(events.len() <= 1),
            Callback::Partial { .. } => panic!("a documented example must be readable whole"),
            Callback::Challenge { .. } => panic!("the generic webhook has no challenge"),
            Callback::Fetch { .. } => panic!("the generic webhook carries its events"),
        }
    }

    for ex in request_examples(&doc, "/v1/bots/{botId}/chatlayer", "post") {
        let event: handover::platform::chatlayer::ChatlayerEvent =
            serde_json::from_value(ex.clone()).unwrap_or_else(|e| panic!("{ex}: {e}"));
        handover::platform::chatlayer::handover_request(event.payload.as_ref()).unwrap();
    }
}

/// The YAML blocks of a Markdown file that look like a whole bot configuration.
fn config_blocks(markdown: &str) -> Vec<String> {
    markdown
        .split("```yaml")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|block| block.contains("botId:") && block.contains("routing:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn configuration_examples_in_the_docs_are_valid() {
    let mut checked = 0;
    for doc in [
        "README.md",
        "docs/configuration.md",
        "docs/chatlayer.md",
        "docs/deploy.md",
    ] {
        for block in config_blocks(&read(doc)) {
            // Documented examples are what a deployed stack accepts.
            BotConfig::parse_under(&block, UrlPolicy::Deployed).unwrap_or_else(|e| panic!("{doc}: {e}\n{block}"));
            checked += 1;
        }
    }
    // The demo bot is the local server's (`handover --allow-local-urls`): http on 127.0.0.1.
    BotConfig::parse_under(&read("examples/demo-bot.yaml"), UrlPolicy::Local).unwrap();
    assert!(checked >= 2, "found {checked} configuration examples");
}

#[test]
fn capability_table_matches_the_adapters() {
    let text = read("docs/providers.md");
    let table = text
        .split("<!-- capabilities:start -->")
        .nth(1)
        .and_then(|t| t.split("<!-- capabilities:end -->").next())
        .unwrap();
    let mut rows = std::collections::BTreeMap::new();
    // Data rows: the header row names the `kind` column itself.
    for line in table
        .lines()
        .filter(|l| l.starts_with("| `") && !l.starts_with("| `kind`"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let kind: ProviderKind = serde_json::from_value(serde_json::json!(cells[0].trim_matches('`'))).unwrap();
        let yes = |c: &str| match c {
            "yes" => true,
            "no" => false,
            other => panic!("cell {other:?} must be yes or no"),
        };
        let provider_wait_estimate = match cells[8] {
            "provider" => true,
            "ours" => false,
            other => panic!("wait estimate {other:?} must be provider or ours"),
        };
        let traits = providers::traits(kind);
        let joins = match (traits.joins_at_start, traits.poll_every_seconds) {
            (true, _) => "at start",
            (false, Some(_)) => "poll",
            (false, None) => "push",
        };
        // A setting that changes how joins are seen is named after the kind's default: Genesys
        // with the EventBridge set-up (pushed events; the poll then asks nothing), or an entry
        // whose traits differ (Sparkcentral's `joinFromLock`, checked through `entry_traits`).
        match cells[9].strip_prefix(joins).map(str::trim) {
            Some("") => {}
            Some("(push with EventBridge)") => assert_eq!(kind, ProviderKind::Genesys),
            Some("(poll with `joinFromLock`)") => {
                let entry: ProviderConfig = serde_json::from_value(serde_json::json!({
                    "id": "p", "kind": kind.as_str(), "secretRef": "x", "joinFromLock": true
                }))
                .unwrap();
                let with = providers::entry_traits(&entry);
                assert!(
                    !with.joins_at_start && with.poll_every_seconds.is_some(),
                    "joinFromLock makes {} poll",
                    kind.as_str()
                );
            }
            _ => panic!("agent joins seen by, for {}: {}", kind.as_str(), cells[9]),
        }
        rows.insert(
            kind.as_str(),
            providers::Capabilities {
                rich_content: yes(cells[1]),
                rich_content_to_user: yes(cells[2]),
                attachments: yes(cells[3]),
                typing: yes(cells[4]),
                bot_history_visible: yes(cells[5]),
                history_written_back: yes(cells[6]),
                agent_availability: yes(cells[7]),
                provider_wait_estimate,
            },
        );
    }
    // Every kind, so a new provider's row is checked without an edit here.
    for kind in ProviderKind::iter() {
        assert_eq!(
            rows.get(kind.as_str()).copied(),
            Some(providers::declared(kind)),
            "row for {}",
            kind.as_str()
        );
    }
}

/// A provider page's configuration example as a whole bot document; with `uncomment`, its
/// commented-out optional settings (`    # name: value`) are switched on too.
fn provider_example_document(block: &str, uncomment: bool) -> String {
    let mut entry = String::new();
    for line in block.lines() {
        let indent = line.len() - line.trim_start().len();
        let setting = line.trim_start().strip_prefix("# ").filter(|rest| {
            rest.split_once(':')
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_alphanumeric()))
        });
        match setting {
            Some(rest) if uncomment && indent >= 4 => {
                entry.push_str(&" ".repeat(indent));
                entry.push_str(rest);
            }
            _ => entry.push_str(line),
        }
        entry.push('\n');
    }
    let first_id = block
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("- id: "))
        .expect("the example names its provider")
        .trim();
    let routing = if block.contains("routing:") {
        String::new()
    } else {
        format!("routing:\n  - {{ provider: {first_id}, queue: general }}\n")
    };
    format!(
        "botId: acme\nplatform: {{ kind: native, outboundUrl: 'https://bot.example.com/h', secretRef: handover/acme/platform }}\n{entry}{routing}"
    )
}

#[test]
fn every_setting_a_provider_page_shows_is_one_its_adapter_knows() {
    let mut checked = 0;
    // Every kind with a page of its own (the generic webhook's is api.md), so a new provider's
    // page is checked without an edit here.
    for kind in ProviderKind::iter()
        .filter(|k| *k != ProviderKind::Webhook)
        .map(ProviderKind::as_str)
    {
        let page = format!("docs/providers/{kind}.md");
        let text = read(&page);
        let blocks: Vec<&str> = text
            .split("```yaml")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .filter(|b| b.contains("providers:") && b.contains(&format!("kind: {kind}")))
            .collect();
        assert!(!blocks.is_empty(), "{page} shows no provider entry");
        for block in blocks {
            // As shown: a document `handover bot validate` accepts, except where the page
            // leaves a value for the reader to fill in (`<…>`).
            let shown = provider_example_document(block, false);
            match BotConfig::parse(&shown) {
                Ok(_) => {}
                Err(e) => assert!(block.contains('<'), "{page}: {e}\n{shown}"),
            }
            // With every optional setting switched on: no field is unknown to the adapter.
            let all = provider_example_document(block, true);
            if let Err(e) = BotConfig::parse(&all) {
                assert!(!e.to_string().contains("unknown field"), "{page}: {e}\n{all}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked} provider examples");
}
