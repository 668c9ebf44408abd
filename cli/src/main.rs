//! `handover`: the local stack and day-to-day operations, for people.
//!
//! Every command uses the default AWS credential chain and region; `AWS_ENDPOINT_URL` points
//! it at a local emulator; `TABLE_NAME` names the table (default `handover`).

mod agent;
mod ops;
mod playground;
mod serve;
mod stats;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "handover",
    version,
    about = "Hand chatbot conversations over to human agents, and back."
)]
struct Cli {
    /// Accept plain http and loopback URLs in bot configurations (the local server and its
    /// demo bot); a deployed stack takes https only (docs/configuration.md, "URLs").
    #[arg(long, global = true)]
    allow_local_urls: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the three handlers locally at the routes of template.yaml, with the evaluator on a timer.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        /// Seconds between evaluator runs (EventBridge runs it every 60 s in AWS).
        #[arg(long, default_value_t = 5)]
        evaluate_every: u64,
        /// The bot the playground page at `/` plays (its demo bot and desk sign with its secrets).
        #[arg(long, default_value = "demo")]
        playground_bot: String,
        /// Print the metric lines (CloudWatch Embedded Metric Format) on stdout, as Lambda does.
        #[arg(long)]
        print_metrics: bool,
    },
    /// Handover figures for a period, from the table: opened, joined, time to agent,
    /// abandoned, end reasons, duration (docs/operations.md).
    Stats {
        bot_id: String,
        /// Start of the period: 90m, 24h, 7d (back from now), a date (2026-11-25) or an RFC 3339 time.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Only handovers of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The DynamoDB table.
    #[command(subcommand)]
    Table(TableCmd),
    /// Bot configurations.
    #[command(subcommand)]
    Bot(BotCmd),
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCmd),
    /// Outbox items (deliveries to the bot platform and the providers).
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Print the X-Handover-Timestamp and X-Handover-Signature headers for a body.
    Sign {
        /// Secrets Manager name of a secret with a `signingSecret` field.
        #[arg(long)]
        secret_ref: String,
        /// File with the exact body ("-" for standard input; an empty file for GET requests).
        #[arg(long)]
        body: PathBuf,
        /// Unix seconds; defaults to now.
        #[arg(long)]
        timestamp: Option<i64>,
        /// Print as curl arguments (`-H '…' -H '…'`).
        #[arg(long)]
        curl: bool,
    },
    /// The local agent stub and a way to act as an agent.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Create a secret in Secrets Manager (local set-up; in AWS use `aws secretsmanager create-secret`).
    SecretPut { name: String, json: String },
}

#[derive(Subcommand)]
enum TableCmd {
    /// Create the table as template.yaml declares it.
    Create {
        /// Succeed when the table already exists.
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Subcommand)]
enum BotCmd {
    /// Validate and store a configuration document (YAML or JSON).
    Put { file: PathBuf },
    /// Print a stored configuration as YAML.
    Get { bot_id: String },
    /// Validate a configuration document without storing it.
    Validate { file: PathBuf },
    /// Switch offloading off (the kill switch): users get the "disabled" dialog.
    Disable {
        bot_id: String,
        #[arg(long)]
        reason: String,
        /// RFC 3339 time at which the switch expires by itself.
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Only for these providers (repeatable).
        #[arg(long = "provider")]
        providers: Vec<String>,
        /// Only for these queues (repeatable).
        #[arg(long = "queue")]
        queues: Vec<String>,
    },
    /// Switch offloading back on.
    Enable { bot_id: String },
}

#[derive(Subcommand)]
enum SessionCmd {
    /// Print a session, its transcript and its outbox.
    Show { bot_id: String, session_id: String },
    /// Delete every item of a session (right to erasure).
    Erase {
        bot_id: String,
        session_id: String,
        /// Erase even when an active handover could not be ended at its provider (end it there
        /// by hand).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum OutboxCmd {
    /// Put a given-up item back in the queue with a fresh count of attempts; the evaluator
    /// delivers it on its next run. Repeating it changes nothing.
    Retry {
        bot_id: String,
        session_id: String,
        /// The item's `seq` or delivery `id` (`ev-…`), as `handover session show` lists them.
        item: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.allow_local_urls {
        handover::url_policy::allow_local_urls();
    }
    match cli.command {
        Command::Serve {
            addr,
            evaluate_every,
            playground_bot,
            print_metrics,
        } => serve::run(&addr, evaluate_every, &playground_bot, print_metrics).await,
        Command::Stats {
            bot_id,
            since,
            queue,
            json,
        } => stats::run(&bot_id, &since, queue, json).await,
        Command::Table(TableCmd::Create { if_missing }) => ops::table_create(if_missing).await,
        Command::Bot(BotCmd::Put { file }) => ops::bot_put(&file).await,
        Command::Bot(BotCmd::Get { bot_id }) => ops::bot_get(&bot_id).await,
        Command::Bot(BotCmd::Validate { file }) => ops::bot_validate(&file),
        Command::Bot(BotCmd::Disable {
            bot_id,
            reason,
            until,
            providers,
            queues,
        }) => {
            ops::bot_disable(
                &bot_id,
                handover::config::KillSwitch {
                    reason,
                    until,
                    providers,
                    queues,
                },
            )
            .await
        }
        Command::Bot(BotCmd::Enable { bot_id }) => ops::bot_enable(&bot_id).await,
        Command::Session(SessionCmd::Show { bot_id, session_id }) => ops::session_show(&bot_id, &session_id).await,
        Command::Session(SessionCmd::Erase {
            bot_id,
            session_id,
            force,
        }) => ops::session_erase(&bot_id, &session_id, force).await,
        Command::Outbox(OutboxCmd::Retry {
            bot_id,
            session_id,
            item,
        }) => ops::outbox_retry(&bot_id, &session_id, &item).await,
        Command::Sign {
            secret_ref,
            body,
            timestamp,
            curl,
        } => ops::sign(&secret_ref, &body, timestamp, curl).await,
        Command::Agent(cmd) => agent::run(cmd).await,
        Command::SecretPut { name, json } => ops::secret_put(&name, &json).await,
    }
}
