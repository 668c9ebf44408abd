//! The two participants of the local stack, as functions that `agent stub`, `agent send` and the
//! playground share: a bot platform (signed native events in, signed outbound events out) and
//! the contact center of the generic webhook provider (signed callbacks in, signed provider
//! events out). `agent stub` prints what handover sends; `agent send` plays the agent.

use anyhow::{Result, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Subcommand;
use handover::signing::{self, SignatureError};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AgentCmd {
    /// Listen for provider events (POST /agent) and bot events (POST /bot) and print them.
    /// `handover serve` does the same for the playground; the stub is for other set-ups.
    Stub {
        #[arg(long, default_value = "127.0.0.1:3001")]
        addr: String,
    },
    /// Send a signed generic-webhook callback as the agent.
    Send {
        /// agent.joined | agent.message | agent.typing | conversation.closed
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The conversation id (the handover id from conversation.started).
        #[arg(long)]
        conversation: String,
        #[arg(long)]
        text: Option<String>,
        #[arg(long, default_value = "demo")]
        bot: String,
        #[arg(long, default_value = "desk")]
        provider: String,
        #[arg(long, default_value = "handover/demo/desk")]
        secret_ref: String,
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        #[arg(long, default_value = "Eva")]
        agent_name: String,
    },
}

pub async fn run(cmd: AgentCmd) -> Result<()> {
    match cmd {
        AgentCmd::Stub { addr } => stub(&addr).await,
        AgentCmd::Send {
            kind,
            conversation,
            text,
            bot,
            provider,
            secret_ref,
            url,
            agent_name,
        } => {
            let body = callback_body(&kind, &conversation, text.as_deref(), &agent_name)?;
            let secret = crate::ops::signing_secret(&secret_ref).await?;
            let (status, answer) =
                send_callback(&reqwest::Client::new(), &url, &bot, &provider, &secret, &body).await?;
            println!("{status} {answer}");
            Ok(())
        }
    }
}

/// The callback types the generic webhook provider sends.
pub const CALLBACK_TYPES: [&str; 4] = ["agent.joined", "agent.message", "agent.typing", "conversation.closed"];

/// A unique event id with a prefix (nanoseconds plus a process-wide counter).
pub fn event_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{:x}-{n}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// The body of a generic-webhook callback, as the contact center sends it.
pub fn callback_body(kind: &str, conversation: &str, text: Option<&str>, agent_name: &str) -> Result<Value> {
    if !CALLBACK_TYPES.contains(&kind) {
        bail!("unknown callback type {kind:?}");
    }
    let mut body = json!({
        "id": event_id("cb"),
        "type": kind,
        "conversationId": conversation,
        "timestamp": chrono::Utc::now(),
        "agent": { "id": "a-1", "name": agent_name },
    });
    if kind == "agent.message" {
        body["message"] = json!({ "text": text.unwrap_or("Hello, how can I help?") });
    }
    Ok(body)
}

/// POSTs `body` signed with `secret` to `url` and returns the status and the answer as text.
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    secret: &[u8],
    body: &Value,
) -> Result<(StatusCode, String)> {
    let bytes = serde_json::to_vec(body)?;
    let mut req = http.post(url).header("content-type", "application/json");
    for (k, v) in signing::headers(secret, chrono::Utc::now().timestamp(), &bytes) {
        req = req.header(k, v);
    }
    let resp = req.body(bytes).send().await?;
    let status = StatusCode::from_u16(resp.status().as_u16())?;
    Ok((status, resp.text().await?))
}

/// Sends a callback as the contact center of provider `provider` of bot `bot`.
pub async fn send_callback(
    http: &reqwest::Client,
    base_url: &str,
    bot: &str,
    provider: &str,
    secret: &[u8],
    body: &Value,
) -> Result<(StatusCode, String)> {
    let url = format!("{base_url}/v1/bots/{bot}/providers/{provider}/callback");
    post_signed(http, &url, secret, body).await
}

/// Sends a native event as the bot platform of bot `bot` (what `scripts/demo.sh` does).
pub async fn send_bot_event(
    http: &reqwest::Client,
    base_url: &str,
    bot: &str,
    secret: &[u8],
    body: &Value,
) -> Result<(StatusCode, String)> {
    let url = format!("{base_url}/v1/bots/{bot}/events");
    post_signed(http, &url, secret, body).await
}

/// Checks the signature headers of a request that handover sent.
pub fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signing::verify(
        secret,
        get(signing::TIMESTAMP_HEADER),
        get(signing::SIGNATURE_HEADER),
        body,
        chrono::Utc::now().timestamp(),
    )
}

async fn stub(addr: &str) -> Result<()> {
    let app = axum::Router::new()
        .route(
            "/agent",
            post(|body: Bytes| async move { show("agent desk <-", &body) }),
        )
        .route("/bot", post(|body: Bytes| async move { show("bot <-", &body) }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("agent stub listening on http://{addr} (/agent for the provider, /bot for the bot platform)");
    axum::serve(listener, app).await?;
    Ok(())
}

fn show(side: &str, body: &[u8]) -> StatusCode {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    println!("{}", describe(side, &v));
    StatusCode::OK
}

/// A few readable lines about an event handover sent to a bot or a contact center.
pub fn describe(side: &str, v: &Value) -> String {
    let kind = v["type"].as_str().unwrap_or("?");
    let conv = v["conversationId"].as_str().or(v["handoverId"].as_str()).unwrap_or("");
    let mut out = format!("[{side}] {kind} {conv}");
    match kind {
        "conversation.started" => out.push_str(&format!(
            "\n    queue={} trigger={}\n    {}",
            v["queue"],
            v["trigger"],
            v["transcriptText"].as_str().unwrap_or("").replace('\n', "\n    ")
        )),
        "user.message" => out.push_str(&format!(
            "\n    {}: {}",
            v["actor"].as_str().unwrap_or(""),
            v["text"].as_str().unwrap_or("")
        )),
        "agent.message" => out.push_str(&format!("\n    {}", v["message"]["text"].as_str().unwrap_or(""))),
        "handover.ended" | "conversation.ended" => out.push_str(&format!("\n    reason={}", v["reason"])),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_body_carries_the_agent_and_for_a_message_its_text() {
        let b = callback_body("agent.message", "h-1", Some("Hi Ann!"), "Eva").unwrap();
        assert_eq!(b["type"], "agent.message");
        assert_eq!(b["conversationId"], "h-1");
        assert_eq!(b["agent"]["name"], "Eva");
        assert_eq!(b["message"]["text"], "Hi Ann!");
        let join = callback_body("agent.joined", "h-1", None, "Eva").unwrap();
        assert!(join.get("message").is_none());
        assert!(callback_body("agent.left", "h-1", None, "Eva").is_err());
    }

    #[test]
    fn event_ids_do_not_repeat() {
        let a = event_id("pg");
        let b = event_id("pg");
        assert_ne!(a, b);
        assert!(a.starts_with("pg-"));
    }

    #[test]
    fn verify_accepts_what_handover_signs_and_refuses_a_changed_body() {
        let secret = b"s3cret";
        let body = br#"{"type":"agent.joined"}"#;
        let mut headers = HeaderMap::new();
        for (k, v) in signing::headers(secret, chrono::Utc::now().timestamp(), body) {
            headers.insert(k, v.parse().unwrap());
        }
        assert_eq!(verify(secret, &headers, body), Ok(()));
        assert_eq!(
            verify(secret, &headers, br#"{"type":"agent.left"}"#),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(secret, &HeaderMap::new(), body), Err(SignatureError::Missing));
    }
}
