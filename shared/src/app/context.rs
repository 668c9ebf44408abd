//! Clients built once per process (outside the handler, so a warm Lambda reuses them).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::bots::{BotCache, Deps, LazyHttp, LoadedBot};
use super::error::ApiError;
use super::health::{BreakerPolicy, Health};
use crate::clock::{Clock, SystemClock};
use crate::delivery::RetryPolicy;
use crate::secrets::{CachedSecrets, SecretSource, SecretsManager};
use crate::store::{DynamoStore, Store};

/// How long a bot configuration is reused before it is read again. A configuration change
/// reaches every warm function within this time; in exchange a user message costs two
/// DynamoDB round trips instead of three.
pub const BOT_CACHE_TTL: Duration = Duration::from_secs(30);

/// The longest a request may work before it answers: the HTTP functions' `Timeout: 25` in
/// template.yaml minus the margin kept for abandoning, answering and logging (a test reads both
/// and checks they agree).
pub const REQUEST_BUDGET: Duration = Duration::from_secs(20);

/// Sessions remembered per instance for one-round-trip turns.
pub const RECENT_SESSIONS: usize = 10_000;
/// ... and at most this many bytes of them (serialised), an eighth of a 256 MB function.
pub const RECENT_SESSIONS_BYTES: usize = 32 * 1024 * 1024;

/// A remembered session's size: its JSON form, the best measure of what it holds.
fn session_bytes(v: &(crate::domain::Session, u64)) -> usize {
    serde_json::to_vec(&v.0).map_or(usize::MAX, |b| b.len())
}

/// How long a container quotes the typical time to join it read, before reading it again. The
/// figure is a two-day aggregate: a few minutes old changes nothing a user would notice.
pub const TYPICAL_WAIT_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// How long a secret is reused (rotation is picked up within this time).
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// One attempt of a DynamoDB or Secrets Manager call: a stalled connection is given up and
/// retried (by the SDK's standard retry) long before the request's deadline.
pub const STORE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// A whole DynamoDB or Secrets Manager call, retries included: well under [`REQUEST_BUDGET`],
/// so a store that stalls gets a 503 answered in time instead of a function timeout.
pub const STORE_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeouts of the AWS SDK clients (connect, attempt, operation).
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(STORE_ATTEMPT_TIMEOUT)
        .operation_timeout(STORE_OPERATION_TIMEOUT)
        .build()
}

/// Makes handover ids; replaceable so sample events can name a known conversation.
pub type IdSource = Arc<dyn Fn() -> String + Send + Sync>;

pub struct AppContext {
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretSource>,
    /// The outbound client, built on first use (see [`LazyHttp`]).
    pub http: LazyHttp,
    pub clock: Arc<dyn Clock>,
    pub retry: RetryPolicy,
    pub health: Health,
    /// See [`REQUEST_BUDGET`]; shorter in tests.
    pub request_budget: Duration,
    /// Whether deliveries drain their lanes (`outbox::drain`). `false` is the delivery of the
    /// previous release (one pass over the outbox as read, a busy lane left to the lease),
    /// kept only so the benchmark can measure both side by side.
    pub drain: bool,
    /// The sessions this instance committed last, with their versions: a turn for one of them
    /// is decided on this copy and committed in one round trip, the version condition
    /// guarding against a copy gone stale (then the session is read as usual).
    pub(crate) recent: crate::kit::memo::Memo<(crate::domain::Session, u64)>,
    /// Typical time to join per `bot#queue`, with when it was read: a "still waiting" nudge
    /// quotes it, and a daily aggregate does not need a read per nudge (see
    /// [`TYPICAL_WAIT_TTL`]).
    pub(crate) typical_waits: crate::kit::memo::Memo<(chrono::DateTime<chrono::Utc>, Option<u64>)>,
    /// Where EMF metric lines go (stdout in Lambda).
    pub metrics: Arc<dyn crate::metrics::Sink>,
    /// Set only where a fixed id is wanted (sample events); otherwise ids are derived or random.
    ids: Option<IdSource>,
    bots: BotCache,
    deps: Deps,
}

impl AppContext {
    pub fn new(store: Arc<dyn Store>, secrets: Arc<dyn SecretSource>, clock: Arc<dyn Clock>) -> Self {
        let http = LazyHttp::default();
        let deps = Deps {
            secrets: secrets.clone(),
            http: http.clone(),
            built: Arc::new(AtomicUsize::new(0)),
            models: None,
        };
        AppContext {
            health: Health::new(store.clone(), BreakerPolicy::default()),
            store,
            secrets,
            http,
            clock,
            retry: RetryPolicy::default(),
            request_budget: REQUEST_BUDGET,
            drain: true,
            recent: crate::kit::memo::Memo::bounded(RECENT_SESSIONS, RECENT_SESSIONS_BYTES, session_bytes),
            typical_waits: crate::kit::memo::Memo::new(RECENT_SESSIONS),
            metrics: Arc::new(crate::metrics::Stdout),
            ids: None,
            bots: BotCache::new(BOT_CACHE_TTL, SECRET_CACHE_TTL),
            deps,
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// See [`AppContext::drain`].
    pub fn with_drain(mut self, drain: bool) -> Self {
        self.drain = drain;
        self
    }

    pub fn with_request_budget(mut self, budget: Duration) -> Self {
        self.request_budget = budget;
        self
    }

    /// Sends metric lines to `sink` (the handlers' and the breaker's).
    pub fn with_metrics(mut self, sink: Arc<dyn crate::metrics::Sink>) -> Self {
        self.health.metrics = sink.clone();
        self.metrics = sink;
        self
    }

    /// Writes metric records, stamped with the context's clock.
    pub fn record(&self, records: &[crate::metrics::Record]) {
        crate::metrics::emit(self.metrics.as_ref(), self.clock.now(), records);
    }

    pub fn with_handover_ids(mut self, ids: IdSource) -> Self {
        self.ids = Some(ids);
        self
    }

    /// A fresh handover id.
    pub fn new_handover_id(&self) -> String {
        match &self.ids {
            Some(ids) => ids(),
            None => format!("h-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The handover id a request would start: derived from the bot, the session and the
    /// request's event id when it has one, so a repeated or concurrent copy of the request
    /// names the same handover (and the same start intent); random otherwise.
    pub fn handover_id_for(&self, key: &crate::store::SessionKey, event_id: Option<&str>) -> String {
        use sha2::{Digest, Sha256};
        match (&self.ids, event_id) {
            (None, Some(event_id)) => {
                let digest = Sha256::digest(format!("{}\n{}\n{}", key.bot_id, key.session_id, event_id).as_bytes());
                format!("h-{}", hex::encode(&digest[..16]))
            }
            _ => self.new_handover_id(),
        }
    }

    /// Takes adapters from `models` instead of building HTTP ones (the simulator).
    pub fn with_models(mut self, models: Arc<dyn super::bots::AdapterSource>) -> Self {
        self.deps.models = Some(models);
        self
    }

    pub fn with_bot_cache_ttl(mut self, ttl: Duration) -> Self {
        self.bots = self.bots.with_ttl(ttl);
        self
    }

    /// Builds everything from the environment: the default AWS credential chain and region,
    /// `AWS_ENDPOINT_URL` for a local emulator, `TABLE_NAME` (default `handover`), and the trust
    /// roots of `HANDOVER_TLS_ROOTS` (see [`crate::tls`]): the SDK clients and the outbound
    /// client share one TLS configuration.
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(sdk_timeouts())
            .http_client(crate::tls::sdk_http_client())
            .load()
            .await;
        let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "handover".to_owned());
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
            .with_due_shards(crate::store::DueShards::from_env());
        let secrets = SecretsManager::new(aws_sdk_secretsmanager::Client::new(&sdk));
        let secrets = CachedSecrets::new(Arc::new(secrets), SECRET_CACHE_TTL);
        AppContext::new(Arc::new(store), Arc::new(secrets), Arc::new(SystemClock))
    }

    /// The bot, with its adapters: from the cache, or read from the store.
    pub async fn bot(&self, bot_id: &str) -> Result<Arc<LoadedBot>, ApiError> {
        // No stored bot has an id outside the identifier alphabet and length (a longer one
        // would not even fit a DynamoDB key): answered like an unknown bot, without a read.
        if !crate::config::is_identifier(bot_id) {
            return Err(ApiError::unauthorized("no bot (not a bot id)"));
        }
        if let Some(bot) = self.bots.fresh(bot_id).await {
            return Ok(bot);
        }
        // A flood of requests for bots that do not exist costs no read per request.
        if self.bots.known_unknown(bot_id).await {
            return Err(ApiError::unauthorized(format!("no bot {bot_id:?} (cached)")));
        }
        let stored = self
            .store
            .get_bot(bot_id)
            .await?
            .ok_or_else(|| ApiError::unauthorized(format!("no bot {bot_id:?}")));
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                self.bots.remember_unknown(bot_id).await;
                return Err(e);
            }
        };
        self.adopt_bot(stored.value)
            .await
            .map_err(|_| ApiError::setup_unavailable("the bot's configuration is invalid"))
    }

    /// Takes a configuration the caller already read (the evaluator reads bots in batches):
    /// the cached bot and its adapters are kept when the configuration is unchanged.
    pub async fn adopt_bot(
        &self,
        config: crate::config::BotConfig,
    ) -> Result<Arc<LoadedBot>, crate::config::ConfigError> {
        let bot_id = config.bot_id.clone();
        self.bots.adopt(config, &self.deps).await.inspect_err(|e| {
            tracing::error!(bot_id, error = %e, "stored configuration is invalid");
        })
    }

    /// Provider adapters this context has built so far.
    pub fn adapters_built(&self) -> usize {
        self.deps.built.load(Ordering::Relaxed)
    }
}
