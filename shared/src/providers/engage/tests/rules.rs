//! Categories, availability, where the API is, and set-up.

use serde_json::{Value, json};

use super::*;
use crate::providers::path_segment;

#[test]
fn recategorising_swaps_only_the_handover_categories() {
    let current = vec!["other".to_owned(), "cat-bot".to_owned()];
    assert_eq!(
        recategorised(&current, &["cat-agent", "cat-bot"], "cat-agent"),
        ["other", "cat-agent"]
    );
    let back = vec!["other".to_owned(), "cat-agent".to_owned(), "cat-agent-nl".to_owned()];
    assert_eq!(
        recategorised(&back, &["cat-agent", "cat-agent-nl"], "cat-bot"),
        ["other", "cat-bot"]
    );
    assert_eq!(recategorised(&[], &["a"], "b"), ["b"]);
    let dup = vec!["x".to_owned(), "x".to_owned(), "b".to_owned()];
    assert_eq!(recategorised(&dup, &[], "b"), ["x", "b"]);
}

#[test]
fn queues_map_to_their_agent_category() {
    let p = provider_with(json!({
        "domain": "acme", "agentCategoryId": "cat-agent", "botCategoryId": "cat-bot",
        "botUserId": BOT_USER, "queueCategories": {"dutch": "cat-agent-nl"}
    }))
    .unwrap();
    assert_eq!(p.agent_category_for("dutch"), "cat-agent-nl");
    assert_eq!(p.agent_category_for("general"), "cat-agent");
    assert_eq!(p.agent_categories(), ["cat-agent", "cat-agent-nl"]);
}

#[test]
fn the_documented_status_answer_means_agents_are_online() {
    let documented: Vec<AgentStatus> = serde_json::from_value(json!([{
        "agent_id": "4f4f3a08a90ffb27ee000583",
        "channels": [
            {"id": "55794bd9416472d4e8050000", "name": "Async", "status": "available", "busyness": "busy"},
            {"id": "55794bda416472d4e8060000", "name": "Realtime", "status": "available", "busyness": "unoccupied"}
        ],
        "custom_status": null
    }]))
    .unwrap();
    assert_eq!(availability_of(&documented, &[], None), AgentAvailability::Online);
    assert_eq!(
        availability_of(&documented, &[], Some("Realtime")),
        AgentAvailability::Online
    );
    assert_eq!(
        availability_of(&documented, &[BOT_USER.to_owned()], None),
        AgentAvailability::NoneOnline,
        "the bot user does not count"
    );
    let busy: Vec<AgentStatus> = serde_json::from_value(json!([
        {"agent_id": "a1", "channels": [{"id": "ch1", "name": "Async", "status": "available", "busyness": "full"}]},
        {"agent_id": "a2", "channels": [{"id": "ch1", "name": "Async", "status": "away", "busyness": "ok"}]},
        {"agent_id": "a3", "channels": [{"id": "ch1", "name": "Async", "status": null, "busyness": null}]},
        {"agent_id": "a4", "channels": [{"id": "ch2", "name": "Realtime", "status": "available", "busyness": "ok"}]}
    ]))
    .unwrap();
    assert_eq!(
        availability_of(&busy, &[], Some("Async")),
        AgentAvailability::NoneOnline
    );
    assert_eq!(availability_of(&busy, &[], Some("ch2")), AgentAvailability::Online);
    assert_eq!(availability_of(&[], &[], None), AgentAvailability::NoneOnline);
}

#[test]
fn the_api_host_comes_from_the_domain_or_the_override() {
    assert_eq!(provider().api.base(), "https://acme.api.engagement.dimelo.com/1.0");
    assert_eq!(
        api_base(None, Some("acme.api.digital.ringcentral.com".into())).unwrap(),
        "https://acme.api.digital.ringcentral.com"
    );
    assert_eq!(
        api_base(Some("http://127.0.0.1:9/1.0/".into()), Some("ignored".into())).unwrap(),
        "http://127.0.0.1:9"
    );
    assert_eq!(
        api_base(Some("http://127.0.0.1:9".into()), None).unwrap(),
        "http://127.0.0.1:9"
    );
    assert!(api_base(None, None).unwrap_err().contains("is required"));
    assert!(api_base(None, Some("acme/evil".into())).is_err());
    assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
}

#[test]
fn missing_or_wrong_settings_are_named() {
    let err = |settings: Value| provider_with(settings).err().unwrap().to_string();
    assert!(
        err(json!({"domain": "acme", "botCategoryId": "b", "botUserId": "u"})).contains("providers.agentCategoryId")
    );
    assert!(
        err(json!({"domain": "acme", "agentCategoryId": "a", "botUserId": "u"})).contains("providers.botCategoryId")
    );
    assert!(
        err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "b"})).contains("providers.botUserId")
    );
    assert!(err(json!({"agentCategoryId": "a", "botCategoryId": "b", "botUserId": "u"})).contains("providers.domain"));
    assert!(
        err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "a", "botUserId": "u"}))
            .contains("must differ")
    );
    assert!(
        err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "b", "botUserId": "u", "sourceID": "x"}))
            .contains("sourceID"),
        "a misspelt setting is refused"
    );
    assert!(
        err(json!({"domain": "acme", "agentCategoryId": "a", "botCategoryId": "b", "botUserId": "u", "queueCategories": {"q": "b"}}))
            .contains("providers.queueCategories.q")
    );
}

#[test]
fn a_missing_secret_field_is_a_setup_error() {
    let secret = Secret::from_json(r#"{"accessToken":"tok","webhookSecret":"s"}"#).unwrap();
    let err = EngageProvider::new(
        &testing::config(ProviderKind::Engage, base_settings()),
        &secret,
        reqwest::Client::new(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("verifyToken"), "{err}");
}

#[test]
fn the_declared_capabilities_are_the_adapters() {
    assert_eq!(provider().capabilities(), CAPABILITIES);
}
