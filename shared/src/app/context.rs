//! Clients built once per process (outside the handler, so a warm Lambda reuses them).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use super::error::ApiError;
use crate::clock::{Clock, SystemClock};
use crate::config::{Bot, PlatformKind};
use crate::delivery::{RetryPolicy, http_client};
use crate::platform::BotPlatform;
use crate::platform::chatlayer::ChatlayerPlatform;
use crate::platform::native::NativePlatform;
use crate::providers::{self, Provider};
use crate::secrets::{CachedSecrets, SecretSource, SecretsManager};
use crate::store::{DynamoStore, Store};

/// How long a bot configuration is reused before it is read again. A configuration change
/// reaches every warm function within this time; in exchange a user message costs two
/// DynamoDB round trips instead of three.
pub const BOT_CACHE_TTL: Duration = Duration::from_secs(30);

/// How long a secret is reused (rotation is picked up within this time).
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// Makes handover ids; replaceable so sample events can name a known conversation.
pub type IdSource = Arc<dyn Fn() -> String + Send + Sync>;

pub struct AppContext {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretSource>,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub retry: RetryPolicy,
    pub breaker: super::health::BreakerPolicy,
    pub health: super::health::HealthCache,
    ids: IdSource,
    bot_ttl: Duration,
    bots: RwLock<HashMap<String, (Instant, Arc<Bot>)>>,
}

impl AppContext {
    pub fn new(store: Arc<dyn Store>, secrets: Arc<dyn SecretSource>, clock: Arc<dyn Clock>) -> Self {
        AppContext {
            store,
            secrets,
            http: http_client(),
            clock,
            retry: RetryPolicy::default(),
            breaker: super::health::BreakerPolicy::default(),
            health: super::health::HealthCache::default(),
            ids: Arc::new(|| format!("h-{}", uuid::Uuid::new_v4().simple())),
            bot_ttl: BOT_CACHE_TTL,
            bots: RwLock::new(HashMap::new()),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_handover_ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    /// A fresh handover id.
    pub fn new_handover_id(&self) -> String {
        (self.ids)()
    }

    pub fn with_bot_cache_ttl(mut self, ttl: Duration) -> Self {
        self.bot_ttl = ttl;
        self
    }

    /// Builds everything from the environment: the default AWS credential chain and region,
    /// `AWS_ENDPOINT_URL` for a local emulator, `TABLE_NAME` (default `handover`).
    pub async fn from_env() -> Self {
        let sdk = aws_config::load_from_env().await;
        let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "handover".to_owned());
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        let secrets = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&sdk));
        let secrets = CachedSecrets::new(Arc::new(secrets), SECRET_CACHE_TTL);
        AppContext::new(Arc::new(store), Arc::new(secrets), Arc::new(SystemClock))
    }

    /// The bot's compiled configuration, from the cache or the store.
    pub async fn bot(&self, bot_id: &str) -> Result<Arc<Bot>, ApiError> {
        if let Some((at, bot)) = self.bots.read().await.get(bot_id)
            && at.elapsed() < self.bot_ttl
        {
            return Ok(bot.clone());
        }
        let stored = self
            .store
            .get_bot(bot_id)
            .await?
            .ok_or_else(|| ApiError::not_found("unknown_bot", format!("no bot {bot_id:?}")))?;
        let bot = Arc::new(Bot::new(stored.value).map_err(|e| {
            tracing::error!(bot_id, error = %e, "stored configuration is invalid");
            ApiError::unavailable("the bot's configuration is invalid")
        })?);
        self.bots
            .write()
            .await
            .insert(bot_id.to_owned(), (Instant::now(), bot.clone()));
        Ok(bot)
    }

    /// The platform secret's signing key.
    pub async fn platform_signing_secret(&self, bot: &Bot) -> Result<Vec<u8>, ApiError> {
        let secret = self.secret(&bot.config.platform.secret_ref).await?;
        let field = match bot.config.platform.kind {
            PlatformKind::Native => "signingSecret",
            PlatformKind::Chatlayer => "verifyToken",
        };
        secret.field(field).map(|s| s.as_bytes().to_vec()).map_err(|e| {
            tracing::error!(bot_id = %bot.config.bot_id, error = %e, "platform secret is unusable");
            ApiError::unavailable("the bot's platform secret is unusable")
        })
    }

    async fn secret(&self, name: &str) -> Result<crate::secrets::Secret, ApiError> {
        self.secrets.get(name).await.map_err(|e| {
            tracing::error!(secret = name, error = %e, "secret unavailable");
            ApiError::unavailable("a secret is unavailable")
        })
    }

    /// The adapter of one of the bot's providers.
    pub async fn provider(&self, bot: &Bot, provider_id: &str) -> Result<Arc<dyn Provider>, ApiError> {
        let config = bot
            .config
            .provider(provider_id)
            .ok_or_else(|| ApiError::not_found("unknown_provider", format!("bot has no provider {provider_id:?}")))?;
        let secret = self.secret(&config.secret_ref).await?;
        providers::build(config, &secret, self.http.clone()).map_err(|e| {
            tracing::error!(provider_id, error = %e, "provider cannot be built");
            ApiError::unavailable(e.to_string())
        })
    }

    /// The bot platform's outbound side.
    pub async fn platform(&self, bot: &Bot) -> Result<Arc<dyn BotPlatform>, ApiError> {
        match bot.config.platform.kind {
            PlatformKind::Native => {
                let url = bot
                    .config
                    .platform
                    .outbound_url
                    .clone()
                    .ok_or_else(|| ApiError::unavailable("the bot has no outboundUrl"))?;
                Ok(Arc::new(NativePlatform {
                    outbound_url: url,
                    signing_secret: self.platform_signing_secret(bot).await?,
                    http: self.http.clone(),
                }))
            }
            PlatformKind::Chatlayer => {
                let p = &bot.config.platform;
                let secret = self.secret(&p.secret_ref).await?;
                let api_token = secret.field("apiToken").map_err(|e| {
                    tracing::error!(bot_id = %bot.config.bot_id, error = %e, "Chatlayer secret is unusable");
                    ApiError::unavailable("the bot's Chatlayer API token is missing")
                })?;
                Ok(Arc::new(ChatlayerPlatform {
                    base_url: p
                        .api_base_url
                        .clone()
                        .unwrap_or_else(|| crate::platform::chatlayer::DEFAULT_API_BASE.to_owned()),
                    api_token: api_token.to_owned(),
                    pause_at: p.pause_at(),
                    pause_action: p.pause_action.clone(),
                    resume_action: p.resume_action.clone(),
                    http: self.http.clone(),
                }))
            }
        }
    }
}
