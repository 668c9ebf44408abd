//! `handover stats`: the figures of `handover::metrics::stats` for one bot and period, as a
//! table or JSON.

use anyhow::{Result, anyhow};
use handover::metrics::stats::{self, Period};
use handover::store::BotStore;

pub async fn run(bot_id: &str, since: &str, queue: Option<String>, json: bool) -> Result<()> {
    let now = chrono::Utc::now();
    let since = stats::parse_since(since, now).map_err(|e| anyhow!(e))?;
    let store = crate::ops::store().await;
    if store.get_bot(bot_id).await?.is_none() {
        return Err(anyhow!("no bot {bot_id:?}"));
    }
    let period = Period {
        since,
        until: now,
        queue,
    };
    let figures = stats::load(&store, bot_id, &period).await?;
    // A closed pipe (`| head`) is not an error worth a panic.
    use std::io::Write;
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&figures)?)
    } else {
        stats::render(&figures)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}
