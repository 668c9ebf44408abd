//! A stand-in contact center for the local stack: `agent stub` prints what handover sends to
//! the generic webhook provider and to the bot's outbound URL; `agent send` plays the agent.

use anyhow::{Result, bail};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AgentCmd {
    /// Listen for provider events (POST /agent) and bot events (POST /bot) and print them.
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
            if !["agent.joined", "agent.message", "agent.typing", "conversation.closed"].contains(&kind.as_str()) {
                bail!("unknown callback type {kind:?}");
            }
            let mut body = json!({
                "id": format!("cb-{}", uuid_like()),
                "type": kind,
                "conversationId": conversation,
                "timestamp": chrono::Utc::now(),
                "agent": { "id": "a-1", "name": agent_name },
            });
            if kind == "agent.message" {
                body["message"] = json!({ "text": text.unwrap_or_else(|| "Hello, how can I help?".into()) });
            }
            let bytes = serde_json::to_vec(&body)?;
            let secret = crate::ops::signing_secret(&secret_ref).await?;
            let mut req = reqwest::Client::new()
                .post(format!("{url}/v1/bots/{bot}/providers/{provider}/callback"))
                .header("content-type", "application/json");
            for (k, v) in handover::signing::headers(&secret, chrono::Utc::now().timestamp(), &bytes) {
                req = req.header(k, v);
            }
            let resp = req.body(bytes).send().await?;
            println!("{} {}", resp.status(), resp.text().await?);
            Ok(())
        }
    }
}

fn uuid_like() -> String {
    format!("{:x}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default())
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
    let kind = v["type"].as_str().unwrap_or("?");
    let conv = v["conversationId"].as_str().or(v["handoverId"].as_str()).unwrap_or("");
    println!("[{side}] {kind} {conv}");
    match kind {
        "conversation.started" => println!(
            "    queue={} trigger={}\n    {}",
            v["queue"],
            v["trigger"],
            v["transcriptText"].as_str().unwrap_or("").replace('\n', "\n    ")
        ),
        "user.message" => println!(
            "    {}: {}",
            v["actor"].as_str().unwrap_or(""),
            v["text"].as_str().unwrap_or("")
        ),
        "agent.message" => println!("    {}", v["message"]["text"].as_str().unwrap_or("")),
        "handover.ended" | "conversation.ended" => println!("    reason={}", v["reason"]),
        _ => {}
    }
    StatusCode::OK
}
