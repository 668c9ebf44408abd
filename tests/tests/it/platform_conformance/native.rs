//! The native contract: signed events at `/v1/bots/{botId}/events`.

use handover_tests::*;
use wiremock::MockServer;

use super::{Backend, SECRET};

#[derive(Debug)]
pub struct Native;

impl Backend for Native {
    async fn platform(&self, env: &TestEnv, bot: &MockServer) -> String {
        let p = env.secret("platform", &serde_json::json!({"signingSecret": SECRET})).await;
        format!("  kind: native\n  outboundUrl: '{}/out'\n  secretRef: {p}", bot.uri())
    }

    fn request(&self, env: &TestEnv, secret: &str, body: &[u8]) -> lambda_http::Request {
        env.request(
            "POST",
            "/v1/bots/acme/events",
            &env.signed(secret.as_bytes(), body),
            body,
        )
    }

    fn user_turn(&self, s: &str, n: u32, text: &str) -> Vec<u8> {
        serde_json::to_vec(&user_message(&format!("e-{n}"), s, text)).unwrap()
    }

    fn handover(&self, s: &str) -> Vec<u8> {
        serde_json::to_vec(&handover_request("e-h", s)).unwrap()
    }
}

platform_cases!(Native);
