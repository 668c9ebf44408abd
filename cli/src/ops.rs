//! Operations against the table and Secrets Manager (local or AWS).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use handover::config::{BotConfig, KillSwitch};
use handover::store::{BotStore, DynamoStore, OutboxStatus, OutboxStore, Requeue, SessionKey, SessionStore, schema};

pub fn table_name() -> String {
    std::env::var("TABLE_NAME").unwrap_or_else(|_| "handover".to_owned())
}

pub async fn sdk() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

pub async fn store() -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk().await), table_name())
}

pub async fn table_create(if_missing: bool) -> Result<()> {
    let client = aws_sdk_dynamodb::Client::new(&sdk().await);
    let name = table_name();
    if if_missing && client.describe_table().table_name(&name).send().await.is_ok() {
        println!("table {name} exists");
        return Ok(());
    }
    schema::create_table(&client, &name).await.map_err(|e| anyhow!(e))?;
    println!("created table {name}");
    Ok(())
}

fn read_config(file: &Path) -> Result<BotConfig> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    BotConfig::parse(&text).map_err(|e| anyhow!("{}: {e}", file.display()))
}

pub fn bot_validate(file: &Path) -> Result<()> {
    let c = read_config(file)?;
    println!("{}: valid configuration for bot {}", file.display(), c.bot_id);
    Ok(())
}

pub async fn bot_put(file: &Path) -> Result<()> {
    let config = read_config(file)?;
    // A secret with a blank field would authenticate anyone (an empty verify token, an empty
    // HMAC key): refused here, named by the reference's path.
    let secrets = handover::secrets::SecretsManager::new(aws_sdk_secretsmanager::Client::new(&sdk().await));
    let blank = handover::config::blank_secret_errors(&config, &secrets).await;
    if !blank.is_empty() {
        bail!("{}", handover::config::ConfigError::Invalid(blank));
    }
    let version = store().await.put_bot(&config).await?;
    println!("stored bot {} (version {version})", config.bot_id);
    Ok(())
}

async fn load_bot(store: &DynamoStore, bot_id: &str) -> Result<BotConfig> {
    Ok(store
        .get_bot(bot_id)
        .await?
        .ok_or_else(|| anyhow!("no bot {bot_id:?}"))?
        .value)
}

pub async fn bot_get(bot_id: &str) -> Result<()> {
    let config = load_bot(&store().await, bot_id).await?;
    print!("{}", serde_yaml_ng::to_string(&config)?);
    Ok(())
}

pub async fn bot_disable(bot_id: &str, ks: KillSwitch) -> Result<()> {
    let store = store().await;
    let mut config = load_bot(&store, bot_id).await?;
    config.disabled = Some(ks);
    config.validate().map_err(|e| anyhow!("{e}"))?;
    store.put_bot(&config).await?;
    println!("offloading disabled for bot {bot_id}");
    Ok(())
}

pub async fn bot_enable(bot_id: &str) -> Result<()> {
    let store = store().await;
    let mut config = load_bot(&store, bot_id).await?;
    config.disabled = None;
    store.put_bot(&config).await?;
    println!("offloading enabled for bot {bot_id}");
    Ok(())
}

pub async fn session_show(bot_id: &str, session_id: &str) -> Result<()> {
    let store = store().await;
    let key = SessionKey::new(bot_id, session_id);
    let session = store
        .load_session(&key)
        .await?
        .ok_or_else(|| anyhow!("no session {session_id:?}"))?;
    let transcript = store.transcript(&key, None).await?;
    let outbox: Vec<_> = store
        .outbox(&key)
        .await?
        .into_iter()
        .map(|o| {
            serde_json::json!({
                "seq": o.seq, "id": o.id, "status": format!("{:?}", o.status), "attempts": o.attempts,
                "nextAttempt": o.due_at, "lastError": o.last_error, "effect": o.effect,
            })
        })
        .collect();
    let out = serde_json::json!({
        "logRef": key.log_ref(),
        "version": session.version,
        "session": session.value,
        "transcript": transcript,
        "outbox": outbox,
    });
    // A closed pipe (`| head`) is not an error worth a panic.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Ends an active handover at its provider first (through the same engine as the functions),
/// then erases.
pub async fn session_erase(bot_id: &str, session_id: &str, force: bool) -> Result<()> {
    let ctx = handover::app::AppContext::from_env().await;
    let bot = ctx.bot(bot_id).await.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let n = handover::app::erase::erase(&ctx, &bot, &SessionKey::new(bot_id, session_id), force).await?;
    println!("erased {n} items");
    Ok(())
}

/// Requeues one given-up outbox item, named by its `seq` or its delivery `id`.
pub async fn outbox_retry(bot_id: &str, session_id: &str, item: &str) -> Result<()> {
    let store = store().await;
    let key = SessionKey::new(bot_id, session_id);
    let found = store
        .outbox(&key)
        .await?
        .into_iter()
        .find(|o| o.id == item || item.parse::<u64>().is_ok_and(|seq| seq == o.seq))
        .ok_or_else(|| {
            anyhow!(
                "session {session_id:?} of bot {bot_id:?} has no outbox item {item:?} (delivered items are deleted)"
            )
        })?;
    if found.status == OutboxStatus::Pending {
        println!("item {} ({}) is already queued: nothing to do", found.seq, found.id);
        return Ok(());
    }
    match store.outbox_requeue(&key, found.seq, chrono::Utc::now()).await? {
        Requeue::Requeued => println!(
            "requeued item {} ({}); the evaluator delivers it on its next run",
            found.seq, found.id
        ),
        Requeue::AlreadyPending => println!("item {} ({}) is already queued: nothing to do", found.seq, found.id),
        Requeue::Missing => bail!(
            "item {} ({}) is gone (delivered or erased meanwhile)",
            found.seq,
            found.id
        ),
    }
    Ok(())
}

pub async fn secret_put(name: &str, json: &str) -> Result<()> {
    serde_json::from_str::<serde_json::Value>(json).context("the secret must be JSON")?;
    if let Ok(secret) = handover::secrets::Secret::from_json(json)
        && let Some(field) = secret.blank_fields().first()
    {
        bail!("the secret's field {field:?} is empty");
    }
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    let exists = client.describe_secret().secret_id(name).send().await.is_ok();
    if exists {
        client
            .put_secret_value()
            .secret_id(name)
            .secret_string(json)
            .send()
            .await?;
    } else {
        client.create_secret().name(name).secret_string(json).send().await?;
    }
    println!("stored secret {name}");
    Ok(())
}

pub async fn signing_secret(secret_ref: &str) -> Result<Vec<u8>> {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    let out = client
        .get_secret_value()
        .secret_id(secret_ref)
        .send()
        .await
        .context("reading the secret")?;
    let secret = handover::secrets::Secret::from_json(out.secret_string().unwrap_or_default())?;
    Ok(secret.field("signingSecret")?.as_bytes().to_vec())
}

pub async fn sign(secret_ref: &str, body: &Path, timestamp: Option<i64>, curl: bool) -> Result<()> {
    let mut bytes = Vec::new();
    if body.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(body).with_context(|| format!("reading {}", body.display()))?;
    }
    if bytes.len() > handover::app::request::MAX_BODY_BYTES {
        bail!("body is larger than the service accepts");
    }
    let secret = signing_secret(secret_ref).await?;
    let ts = timestamp.unwrap_or_else(|| chrono::Utc::now().timestamp());
    for (name, value) in handover::signing::headers(&secret, ts, &bytes) {
        if curl {
            print!("-H '{name}: {value}' ");
        } else {
            println!("{name}: {value}");
        }
    }
    if curl {
        println!();
    }
    Ok(())
}
