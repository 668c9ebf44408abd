//! Loaded bots: a bot's compiled configuration together with its provider adapters and bot
//! platform client, built once per load and dropped with it. Adapters hold their own token
//! caches, so a warm function reuses tokens for as long as it keeps the bot.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, RwLock};

use super::error::ApiError;
use crate::config::{Bot, BotConfig, Compile};
use crate::platform::BotPlatform;
use crate::providers::{self, Provider};
use crate::secrets::{Secret, SecretSource};

/// A bot as one function instance uses it. Dereferences to the compiled [`Bot`].
pub struct LoadedBot {
    bot: Bot,
    loaded_at: Instant,
    providers: HashMap<String, OnceCell<Arc<dyn Provider>>>,
    platform: OnceCell<Arc<dyn BotPlatform>>,
    deps: Deps,
}

/// The outbound HTTP client, built on first use. Building it reads and parses the system's CA
/// bundle (about 5 ms, measured by `init-probe` in docs/performance.md); the most common event,
/// a turn while the bot is in control, sends nothing outbound, so a container that only sees
/// those never pays for it, and no container pays for it during init.
#[derive(Clone, Default)]
pub struct LazyHttp(Arc<std::sync::OnceLock<reqwest::Client>>);

impl LazyHttp {
    /// Hands in the client to use when none was built yet (a test's shorter timeouts); false
    /// when one was already in use.
    pub fn set(&self, client: reqwest::Client) -> bool {
        self.0.set(client).is_ok()
    }

    /// The client, built now if this is its first use. Clones share one connection pool.
    pub fn get(&self) -> reqwest::Client {
        self.0.get_or_init(crate::delivery::http_client).clone()
    }

    /// Whether the client has been built (observability and the init tests).
    pub fn is_built(&self) -> bool {
        self.0.get().is_some()
    }
}

/// What building adapters needs, shared by every loaded bot of a context.
#[derive(Clone)]
pub struct Deps {
    pub secrets: Arc<dyn SecretSource>,
    pub http: LazyHttp,
    /// Adapters constructed so far (observability, and the tests that adapters are built once
    /// per bot load rather than per request).
    pub built: Arc<AtomicUsize>,
    /// Where adapters come from instead of HTTP, when set: the simulator's models of providers
    /// and bot platforms. Never set in a function.
    pub models: Option<Arc<dyn AdapterSource>>,
}

/// Builds a bot's adapters in place of the HTTP ones, so the real engine can run against
/// models of providers and bot platforms (the deterministic simulator, `make sim`). The models
/// implement the same ports as the HTTP adapters; nothing else of the engine changes.
pub trait AdapterSource: Send + Sync {
    fn provider(&self, bot: &BotConfig, provider: &crate::config::ProviderConfig) -> Arc<dyn Provider>;
    fn platform(&self, bot: &BotConfig) -> Arc<dyn BotPlatform>;
}

impl std::ops::Deref for LoadedBot {
    type Target = Bot;
    fn deref(&self) -> &Bot {
        &self.bot
    }
}

impl LoadedBot {
    pub fn new(bot: Bot, deps: Deps) -> Self {
        let providers = bot
            .config
            .providers
            .iter()
            .map(|p| (p.id.clone(), OnceCell::new()))
            .collect();
        LoadedBot {
            bot,
            loaded_at: Instant::now(),
            providers,
            platform: OnceCell::new(),
            deps,
        }
    }

    /// The adapter of one of the bot's providers, built on first use. A failed build (a
    /// secret briefly unavailable) is not remembered: the next call tries again.
    pub async fn provider(&self, provider_id: &str) -> Result<Arc<dyn Provider>, ApiError> {
        let (cell, config) = self
            .providers
            .get(provider_id)
            .zip(self.bot.config.provider(provider_id))
            .ok_or_else(|| ApiError::unauthorized(format!("bot has no provider {provider_id:?}")))?;
        cell.get_or_try_init(|| async {
            if let Some(models) = &self.deps.models {
                self.deps.built.fetch_add(1, Ordering::Relaxed);
                return Ok(models.provider(&self.bot.config, config));
            }
            let secret = self.secret(&config.secret_ref).await?;
            let adapter = providers::build(config, &secret, self.deps.http.get()).map_err(|e| {
                tracing::error!(provider_id, error = %e, "provider cannot be built");
                ApiError::setup_unavailable(e.to_string())
            })?;
            self.deps.built.fetch_add(1, Ordering::Relaxed);
            Ok(adapter)
        })
        .await
        .cloned()
    }

    /// The bot platform's outbound side, built on first use.
    pub async fn platform(&self) -> Result<Arc<dyn BotPlatform>, ApiError> {
        self.platform.get_or_try_init(|| self.build_platform()).await.cloned()
    }

    async fn build_platform(&self) -> Result<Arc<dyn BotPlatform>, ApiError> {
        if let Some(models) = &self.deps.models {
            return Ok(models.platform(&self.bot.config));
        }
        let secret = self.secret(&self.bot.config.platform.secret_ref).await?;
        crate::platform::build(&self.bot.config.platform, &secret, self.deps.http.get()).map_err(|e| {
            tracing::error!(bot_id = %self.bot.config.bot_id, error = %e, "bot platform unusable");
            ApiError::setup_unavailable(e.to_string())
        })
    }

    /// The platform secret's signing key (native) or verify token (Chatlayer). Read through the
    /// secrets cache on every call, so a rotation is picked up without reloading the bot.
    pub async fn platform_signing_secret(&self) -> Result<Vec<u8>, ApiError> {
        let secret = self.secret(&self.bot.config.platform.secret_ref).await?;
        let field = crate::platform::verify_secret_field(self.bot.config.platform.kind);
        secret.field(field).map(|s| s.as_bytes().to_vec()).map_err(|e| {
            tracing::error!(bot_id = %self.bot.config.bot_id, error = %e, "platform secret is unusable");
            ApiError::setup_unavailable("the bot's platform secret is unusable")
        })
    }

    async fn secret(&self, name: &str) -> Result<Secret, ApiError> {
        self.deps.secrets.get(name).await.map_err(|e| {
            tracing::error!(secret = name, error = %e, "secret unavailable");
            ApiError::setup_unavailable("a secret is unavailable")
        })
    }
}

/// The loaded bots of one function instance.
///
/// A bot is read again after `ttl`; when its stored configuration is unchanged and the loaded
/// bot is younger than `rebuild_after`, the same adapters (and their tokens) are kept. After
/// `rebuild_after` the adapters are rebuilt, so a rotated provider secret is picked up.
pub struct BotCache {
    ttl: Duration,
    rebuild_after: Duration,
    entries: RwLock<HashMap<String, (Instant, Arc<LoadedBot>)>>,
    /// Bot ids recently found not to exist, and when (a short negative cache).
    unknown: RwLock<HashMap<String, Instant>>,
}

/// How long a bot id found not to exist is answered from memory.
pub const UNKNOWN_BOT_TTL: Duration = Duration::from_secs(10);

/// The most unknown ids remembered (cleared when full, so a flood of random ids stays bounded).
const UNKNOWN_BOTS_MAX: usize = 10_000;

impl BotCache {
    pub fn new(ttl: Duration, rebuild_after: Duration) -> Self {
        BotCache {
            ttl,
            rebuild_after,
            entries: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
        }
    }

    /// Whether `bot_id` was found not to exist within [`UNKNOWN_BOT_TTL`] (never longer than
    /// the configuration cache itself, so a new bot is served as fast as a changed one).
    pub async fn known_unknown(&self, bot_id: &str) -> bool {
        let ttl = UNKNOWN_BOT_TTL.min(self.ttl);
        self.unknown
            .read()
            .await
            .get(bot_id)
            .is_some_and(|at| at.elapsed() < ttl)
    }

    pub async fn remember_unknown(&self, bot_id: &str) {
        let mut unknown = self.unknown.write().await;
        if unknown.len() >= UNKNOWN_BOTS_MAX {
            unknown.clear();
        }
        unknown.insert(bot_id.to_owned(), Instant::now());
    }

    pub fn with_ttl(self, ttl: Duration) -> Self {
        BotCache { ttl, ..self }
    }

    /// The cached bot while it is fresh.
    pub async fn fresh(&self, bot_id: &str) -> Option<Arc<LoadedBot>> {
        self.entries
            .read()
            .await
            .get(bot_id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, bot)| bot.clone())
    }

    /// Takes a configuration just read from the store: keeps the loaded bot when nothing
    /// changed, otherwise compiles and caches a new one.
    pub async fn adopt(&self, config: BotConfig, deps: &Deps) -> Result<Arc<LoadedBot>, crate::config::ConfigError> {
        let bot_id = config.bot_id.clone();
        let kept = self.entries.read().await.get(&bot_id).and_then(|(_, b)| {
            (b.bot.config == config && b.loaded_at.elapsed() < self.rebuild_after).then(|| b.clone())
        });
        let loaded = match kept {
            Some(b) => b,
            None => Arc::new(LoadedBot::new(Bot::new(config)?, deps.clone())),
        };
        self.entries
            .write()
            .await
            .insert(bot_id, (Instant::now(), loaded.clone()));
        Ok(loaded)
    }
}
