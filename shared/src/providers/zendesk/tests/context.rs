//! The pass-control metadata the agent's ticket is filled from.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::super::outbound::{METADATA_BUDGET, json_len};
use super::*;
use crate::domain::{Handover, UserInfo};

// --- the agent's context ---

fn handover(variables: Value, tags: Vec<&str>) -> Handover {
    Handover {
        id: "h-9".into(),
        provider: "zd".into(),
        variables: serde_json::from_value(variables).unwrap(),
        tags: tags.into_iter().map(str::to_owned).collect(),
        summary: Some("Parcel A-1 is late".into()),
        provider_conversation_id: Some("f52b01137aa6c250bc7251fa".into()),
        requested_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        ..testing::handover()
    }
}

fn entry(seq: u64, text: &str) -> TranscriptEntry {
    testing::entry(
        seq,
        crate::domain::Actor::User,
        Message::text(text),
        "1970-01-01T00:00:00Z",
    )
}

#[test]
fn metadata_carries_tags_fields_and_fits_four_kilobytes() {
    let p = provider_with(json!({
        "appId": APP, "subdomain": "acme",
        "ticketFields": {"summary": "360001", "transcript": "360002", "orderId": "360003", "userEmail": "360004"}
    }))
    .unwrap();
    let h = handover(
        json!({"orderId": "A-1", "firstMessageId": "603012d7e0a3f9000c879b67"}),
        vec!["vip", "late parcel"],
    );
    let user = UserInfo {
        id: "u-7".into(),
        name: Some("Ann".into()),
        email: Some("ann@example.com".into()),
        locale: None,
    };
    let long: Vec<TranscriptEntry> = (1..=200).map(|i| entry(i, &"Where is my parcel? ".repeat(5))).collect();
    let r = testing::start_request(&h, Some(&user), &long);
    let m = p.handover_metadata(&r);
    assert_eq!(m["handover_id"], "h-9");
    assert_eq!(m["dataCapture.systemField.tags"], "vip late_parcel");
    assert_eq!(m["first_message_id"], "603012d7e0a3f9000c879b67");
    assert_eq!(m["dataCapture.ticketField.360001"], "Parcel A-1 is late");
    assert_eq!(m["dataCapture.ticketField.360003"], "A-1");
    assert_eq!(m["dataCapture.ticketField.360004"], "ann@example.com");
    let transcript = m["dataCapture.ticketField.360002"].as_str().unwrap();
    assert!(transcript.starts_with("User: Where is my parcel?"));
    assert!(transcript.ends_with('…'), "shortened to fit");
    assert!(json_len(&m) <= METADATA_BUDGET);
    assert!(m.values().all(|v| v.is_string()), "flat");
}

#[test]
fn ticket_field_ids_are_accepted_as_the_numbers_zendesk_gives() {
    // Zendesk's Ticket Fields API answers integer ids
    // (`tests/fixtures/zendesk/ticket-fields.json`, sources in its `_source`); a bot document
    // written from it carries them as numbers, and may quote some.
    let fields: Value = serde_json::from_str(include_str!("../../../../../tests/fixtures/zendesk/ticket-fields.json"))
        .expect("the fixture is JSON");
    let id_of = |title: &str| -> Value {
        let field = fields["ticket_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["title"] == title)
            .unwrap_or_else(|| panic!("no field {title}"));
        assert!(field["id"].is_u64(), "Zendesk's id is a number");
        field["id"].clone()
    };
    let p = provider_with(json!({
        "appId": APP, "subdomain": "acme",
        "ticketFields": {"summary": id_of("Summary"), "orderId": id_of("Order id").to_string()}
    }))
    .unwrap();
    let h = handover(json!({"orderId": "A-1"}), vec![]);
    let r = testing::start_request(&h, None, &[]);
    let m = p.handover_metadata(&r);
    assert_eq!(m["dataCapture.ticketField.360001"], "Parcel A-1 is late");
    assert_eq!(m["dataCapture.ticketField.360003"], "A-1");
}
