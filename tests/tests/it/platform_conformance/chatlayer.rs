//! Chatlayer's Offloading Webhook at `/v1/bots/{botId}/chatlayer`, the verify token in the query.

use handover_tests::*;
use serde_json::json;
use wiremock::MockServer;

use super::{Backend, SECRET};

#[derive(Debug)]
pub struct Chatlayer;

impl Backend for Chatlayer {
    async fn platform(&self, env: &TestEnv, bot: &MockServer) -> String {
        let p = env
            .secret("platform", &json!({"verifyToken": SECRET, "apiToken": "api"}))
            .await;
        format!("  kind: chatlayer\n  apiBaseUrl: '{}'\n  secretRef: {p}", bot.uri())
    }

    fn request(&self, env: &TestEnv, secret: &str, body: &[u8]) -> lambda_http::Request {
        env.request(
            "POST",
            &format!("/v1/bots/acme/chatlayer?challenge.verifyToken={secret}"),
            &[],
            body,
        )
    }

    fn user_turn(&self, s: &str, n: u32, text: &str) -> Vec<u8> {
        let body = json!({"botId": "cl-bot", "version": "LIVE", "sessionId": s, "event": "messages",
            "messages": [{"actor": "user", "timestamp": format!("2026-11-25T09:00:0{n}.000Z"),
                "message": {"messageType": "text", "text": text, "sender": {"id": s}}}]});
        serde_json::to_vec(&body).unwrap()
    }

    fn handover(&self, s: &str) -> Vec<u8> {
        let body = json!({"botId": "cl-bot", "version": "LIVE", "sessionId": s, "event": "offload",
            "transcript": [], "payload": {"trigger": "explicit_request"}});
        serde_json::to_vec(&body).unwrap()
    }
}

platform_cases!(Chatlayer);
