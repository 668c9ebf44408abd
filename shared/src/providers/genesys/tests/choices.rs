//! Finding the structured message a user's text answers (`choice.rs`), on bodies shaped as the
//! SDK models `MessageConversation`/`MessageDetails` and `MessageData` describe them.

use serde_json::json;

use super::super::choice::{answer, latest_structured};
use super::super::wire::{MessageData, PolledConversation};

fn conversation(messages: serde_json::Value) -> PolledConversation {
    serde_json::from_value(messages).unwrap()
}

#[test]
fn only_a_structured_message_genesys_sent_last_is_answered() {
    let flow_then_customer = conversation(json!({"participants": [
        {"purpose": "workflow", "messages": [
            {"messageId": "m-flow", "messageTime": "2026-11-25T09:02:00.000Z", "messageMetadata": {"type": "Structured"}}]},
        {"purpose": "customer", "messages": [
            {"messageId": "m-ours", "messageTime": "2026-11-25T09:03:00.000Z", "messageMetadata": {"type": "Text"}}]}
    ]}));
    assert_eq!(
        latest_structured(&flow_then_customer),
        None,
        "our own message came after it"
    );
    let flow_last = conversation(json!({"participants": [
        {"purpose": "customer", "messages": [
            {"messageId": "m-ours", "messageTime": "2026-11-25T09:01:00.000Z", "messageMetadata": {"type": "Text"}}]},
        {"purpose": "workflow", "messages": [
            {"messageId": "m-flow", "messageTime": "2026-11-25T09:02:00.000Z", "messageMetadata": {"type": "Structured"}}]}
    ]}));
    assert_eq!(latest_structured(&flow_last).as_deref(), Some("m-flow"));
    let agent_text_last = conversation(json!({"participants": [
        {"purpose": "agent", "messages": [
            {"messageId": "m-text", "messageTime": "2026-11-25T09:02:00.000Z", "messageMetadata": {"type": "Text"}}]}
    ]}));
    assert_eq!(latest_structured(&agent_text_last), None);
}

#[test]
fn a_cards_postback_button_is_a_button_response_and_other_text_is_none() {
    let data: MessageData = serde_json::from_value(json!({
        "direction": "outbound",
        "normalizedMessage": {"id": "m-card", "type": "Structured", "content": [
            {"contentType": "Card", "card": {"title": "Parcel A-1", "actions": [
                {"type": "Link", "text": "Track", "url": "https://t.example.com/1"},
                {"type": "Postback", "text": "Reschedule", "payload": "resched-a1"}]}}]}
    }))
    .unwrap();
    let (response, id) = answer(&data, "  reschedule ").unwrap();
    assert_eq!(id, "m-card");
    assert_eq!(
        serde_json::to_value(response).unwrap(),
        json!({"type": "Button", "text": "Reschedule", "payload": "resched-a1"})
    );
    assert!(answer(&data, "Track").is_none(), "a link is no choice");
    assert!(answer(&data, "Something else").is_none());
    let inbound: MessageData = serde_json::from_value(json!({
        "direction": "inbound",
        "normalizedMessage": {"id": "m-in", "type": "Structured", "content": [
            {"contentType": "QuickReply", "quickReply": {"text": "Yes", "payload": "y"}}]}
    }))
    .unwrap();
    assert!(answer(&inbound, "Yes").is_none(), "only what Genesys sent is answered");
}
