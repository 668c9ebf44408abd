//! Test harness: a real DynamoDB + Secrets Manager emulator (moto) started once per test
//! binary on a free port and stopped when the binary exits, a fresh table per test, a manual
//! clock, and requests built exactly as API Gateway delivers them.
//!
//! The emulator is required: when `moto_server` cannot be started the tests fail with a
//! message saying how to get it (`make test` installs it); they never skip.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, Utc};
use handover::app::{AppContext, bot_webhook, local, provider_callback};
use handover::clock::ManualClock;
use handover::config::{BotConfig, Document};
use handover::delivery::RetryPolicy;
use handover::secrets::{CachedSecrets, MemorySecrets, SecretSource, SecretsManager};
use handover::store::{DynamoStore, MemoryStore, SessionKey, Store, schema};
use serde_json::Value;

pub use handover;

pub mod doc_block;
pub mod runtime_api;
pub mod soak;

struct Emulator {
    endpoint: String,
    _process: Child,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

/// The command that starts the emulator: `MOTO_SERVER` if set, else moto from the project's
/// virtualenv behind `scripts/moto-serial.py`, which serialises request handling (moto's
/// transactions are not atomic under concurrent requests; DynamoDB's are).
fn moto_binary() -> String {
    if let Ok(b) = std::env::var("MOTO_SERVER") {
        return format!("\"{b}\"");
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let python = format!("{root}/.venv/bin/python");
    if std::path::Path::new(&python).exists() {
        format!("\"{python}\" \"{root}/scripts/moto-serial.py\"")
    } else {
        "moto_server".to_owned()
    }
}

/// The emulator's endpoint, starting it on first use.
pub fn emulator_endpoint() -> &'static str {
    &EMULATOR
        .get_or_init(|| {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            let bin = moto_binary();
            // The shell keeps moto alive while our stdin pipe is open: when this test process
            // exits (however it exits), `cat` sees end-of-file and moto is stopped.
            let script = format!("{bin} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; cat >/dev/null; kill $m");
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sh starts");
            let endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if probe(port) {
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    panic!("the DynamoDB emulator did not start ({bin}): {err}\nRun `make test`, which installs moto into .venv, or set MOTO_SERVER.");
                }
                assert!(Instant::now() < deadline, "the DynamoDB emulator ({bin}) did not answer within 30 s; run `make test` or set MOTO_SERVER");
                std::thread::sleep(Duration::from_millis(100));
            }
            Emulator { endpoint, _process: child }
        })
        .endpoint
}

fn probe(port: u16) -> bool {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200"
}

/// SDK configuration for the emulator: fixed region, dummy credentials.
pub async fn emulator_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(emulator_endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

/// Counts DynamoDB requests put on the wire.
#[derive(Debug, Default, Clone)]
pub struct RequestCounter(Arc<AtomicUsize>);

impl RequestCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// One test's world: its own store and secrets, a manual clock, the handlers.
///
/// Two kinds of world: [`TestEnv::new`] on the emulator (its own table and secret names), for
/// what depends on DynamoDB and Secrets Manager themselves (request counts, the table's schema,
/// the Lambda binaries, items read back by hand); [`TestEnv::in_memory`] on
/// [`MemoryStore`] and [`MemorySecrets`], for the engine's behaviour through the handlers. The
/// store conformance suite (store_conformance.rs) runs the same cases on both stores, which is
/// what lets an engine test run on either.
pub struct TestEnv {
    pub ctx: Arc<AppContext>,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    pub prefix: String,
    /// DynamoDB requests made through the test's own context (emulator worlds only).
    pub ddb_requests: RequestCounter,
    backend: Backend,
}

enum Backend {
    Emulator {
        store: DynamoStore,
        dynamo: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
        table: String,
    },
    Memory {
        store: Arc<MemoryStore>,
        secrets: Arc<MemorySecrets>,
    },
}

/// A fixed, realistic start time (a Wednesday morning in Brussels).
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z").unwrap().to_utc()
}

/// A retry policy fast enough for tests, with the production shape.
pub fn test_retry() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(2),
        max_delay: Duration::from_secs(60),
        max_attempts: 4,
        lease: Duration::from_secs(30),
    }
}

/// With `HANDOVER_TEST_LOG=<file>`, every log event of this process is written to that file
/// exactly as the Lambda functions write it (`app::logging`, JSON lines, dependency cap
/// included), for the `RUST_LOG`-style spec in `HANDOVER_TEST_LOG_LEVEL` (default `trace`).
/// The log scan (tests/tests/it/log_scan.rs) runs end-to-end tests this way; without the
/// variable nothing is installed.
pub fn capture_logs_from_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(path) = std::env::var("HANDOVER_TEST_LOG") else {
            return;
        };
        let level = std::env::var("HANDOVER_TEST_LOG_LEVEL").unwrap_or_else(|_| "trace".into());
        let file = std::fs::File::create(&path).expect("log capture file");
        handover::app::logging::install(&level, std::sync::Mutex::new(file))
            .expect("no other log subscriber in a log-capture run");
    });
}

impl TestEnv {
    /// A world on the emulator: a fresh table and secret prefix.
    pub async fn new() -> TestEnv {
        capture_logs_from_env();
        // The mock servers listen on http://127.0.0.1, as for the local server.
        handover::url_policy::allow_local_urls();
        let sdk = emulator_sdk().await;
        let counter = RequestCounter::default();
        let dynamo_conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(counter.clone())
            .build();
        let dynamo = aws_sdk_dynamodb::Client::from_conf(dynamo_conf);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let table = format!("t-{}", &id[..12]);
        schema::create_table(&dynamo, &table)
            .await
            .expect("table created from template.yaml");
        let store = DynamoStore::new(dynamo.clone(), table.clone());
        let cached = CachedSecrets::new(Arc::new(SecretsManager::new(secrets.clone())), Duration::from_secs(300));
        let env = TestEnv::with_parts(
            Arc::new(store.clone()),
            Arc::new(cached),
            format!("test-{}", &id[..12]),
            counter.clone(),
            Backend::Emulator {
                store,
                dynamo,
                secrets,
                table,
            },
        );
        counter.reset();
        env
    }

    /// A world in memory: [`MemoryStore`] and [`MemorySecrets`], no emulator.
    pub async fn in_memory() -> TestEnv {
        capture_logs_from_env();
        handover::url_policy::allow_local_urls();
        let store = Arc::new(MemoryStore::new());
        let secrets = Arc::new(MemorySecrets::new());
        let cached = CachedSecrets::new(secrets.clone(), Duration::from_secs(300));
        let id = uuid::Uuid::new_v4().simple().to_string();
        TestEnv::with_parts(
            store.clone(),
            Arc::new(cached),
            format!("test-{}", &id[..12]),
            RequestCounter::default(),
            Backend::Memory { store, secrets },
        )
    }

    fn with_parts(
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretSource>,
        prefix: String,
        ddb_requests: RequestCounter,
        backend: Backend,
    ) -> TestEnv {
        let clock = Arc::new(ManualClock::new(t0()));
        let ctx = AppContext::new(store.clone(), secrets, clock.clone()).with_retry(test_retry());
        TestEnv {
            ctx: Arc::new(ctx),
            clock,
            store,
            prefix,
            ddb_requests,
            backend,
        }
    }

    fn emulator(
        &self,
    ) -> (
        &DynamoStore,
        &aws_sdk_dynamodb::Client,
        &aws_sdk_secretsmanager::Client,
        &str,
    ) {
        match &self.backend {
            Backend::Emulator {
                store,
                dynamo,
                secrets,
                table,
            } => (store, dynamo, secrets, table),
            Backend::Memory { .. } => panic!("this test reads the emulator itself: build it with TestEnv::new()"),
        }
    }

    /// The emulator's DynamoDB client (emulator worlds only).
    pub fn dynamo(&self) -> &aws_sdk_dynamodb::Client {
        self.emulator().1
    }

    /// The emulator's Secrets Manager client (emulator worlds only).
    pub fn secrets_client(&self) -> &aws_sdk_secretsmanager::Client {
        self.emulator().2
    }

    /// This test's table (emulator worlds only).
    pub fn table(&self) -> &str {
        self.emulator().3
    }

    /// The store as the concrete DynamoDB store (emulator worlds only).
    pub fn dynamo_store(&self) -> &DynamoStore {
        self.emulator().0
    }

    /// Creates a secret under this test's prefix; returns its name.
    pub async fn secret(&self, name: &str, json: &Value) -> String {
        let full = format!("{}/{name}", self.prefix);
        match &self.backend {
            Backend::Emulator { secrets, .. } => {
                secrets
                    .create_secret()
                    .name(&full)
                    .secret_string(json.to_string())
                    .send()
                    .await
                    .expect("secret created");
            }
            Backend::Memory { secrets, .. } => secrets.put(&full, &json.to_string()),
        }
        full
    }

    /// Stores a bot configuration (YAML or JSON text), validated like `handover bot put`.
    pub async fn put_bot(&self, text: &str) -> BotConfig {
        let config = BotConfig::parse(text).expect("valid bot configuration");
        self.store.put_bot(&config).await.expect("bot stored");
        config
    }

    pub fn now(&self) -> DateTime<Utc> {
        handover::clock::Clock::now(self.clock.as_ref())
    }

    /// A request as API Gateway would deliver it, built through the local conversion.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> lambda_http::Request {
        let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        h.push(("host".into(), "api.example.com".into()));
        if !body.is_empty() {
            h.push(("content-type".into(), "application/json".into()));
        }
        local::to_request(&local::apigw_v2_event(method, path, &h, body)).expect("event parses")
    }

    /// Signature headers for a body at the test clock's time.
    pub fn signed(&self, secret: &[u8], body: &[u8]) -> Vec<(&'static str, String)> {
        handover::signing::headers(secret, self.now().timestamp(), body).to_vec()
    }

    /// Signature headers for a session read of `path`: it signs its method and path.
    pub fn signed_read(&self, secret: &[u8], path: &str) -> Vec<(&'static str, String)> {
        self.signed(secret, &handover::app::bot_webhook::session_read_signed_bytes(path))
    }

    /// POSTs a native event, signed with `secret`.
    /// Asks for a handover in `session` of bot `acme` and returns its id; fails the test
    /// unless a conversation was opened.
    pub async fn open_handover(&self, platform_secret: &[u8], session: &str) -> String {
        let (status, answer) = self
            .send_event("acme", platform_secret, &handover_request("e-open", session))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "opened", "{answer}");
        answer["handoverId"].as_str().unwrap().to_owned()
    }

    pub async fn send_event(&self, bot_id: &str, secret: &[u8], body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let req = self.request(
            "POST",
            &format!("/v1/bots/{bot_id}/events"),
            &self.signed(secret, &bytes),
            &bytes,
        );
        self.call_bot(req).await
    }

    pub async fn call_bot(&self, req: lambda_http::Request) -> (u16, Value) {
        response_json(bot_webhook::handle(&self.ctx, req).await)
    }

    pub async fn call_provider(&self, req: lambda_http::Request) -> (u16, Value) {
        response_json(provider_callback::handle(&self.ctx, req).await)
    }

    /// POSTs a generic webhook callback, signed with the provider's secret.
    pub async fn send_callback(&self, bot_id: &str, provider_id: &str, secret: &[u8], body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let path = format!("/v1/bots/{bot_id}/providers/{provider_id}/callback");
        let req = self.request("POST", &path, &self.signed(secret, &bytes), &bytes);
        self.call_provider(req).await
    }

    pub async fn session(&self, bot_id: &str, session_id: &str) -> Option<handover::domain::Session> {
        self.store
            .load_session(&SessionKey::new(bot_id, session_id))
            .await
            .unwrap()
            .map(|v| v.value)
    }

    /// A function's context on this test's table whose outbound client gives up after 500 ms,
    /// with a request budget far longer, so the client's timeout is what ends each try.
    pub fn impatient_context(&self) -> AppContext {
        self.impatient_context_on(self.ctx.store.clone())
    }

    /// [`TestEnv::impatient_context`] on another store (a client with a fault injected).
    pub fn impatient_context_on(&self, store: Arc<dyn Store>) -> AppContext {
        let ctx = AppContext::new(store, self.ctx.secrets.clone(), self.clock.clone())
            .with_retry(test_retry())
            .with_request_budget(Duration::from_secs(15));
        assert!(
            ctx.http.set(
                reqwest::Client::builder()
                    .timeout(Duration::from_millis(500))
                    .build()
                    .expect("a client")
            ),
            "a fresh context has no client yet"
        );
        ctx
    }

    /// Every item in the store, sorted, for "nothing changed" checks.
    pub async fn dump(&self) -> Vec<String> {
        let (dynamo, table) = match &self.backend {
            Backend::Memory { store, .. } => return store.dump(),
            Backend::Emulator { dynamo, table, .. } => (dynamo, table),
        };
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = dynamo
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in out.items() {
                let mut pairs: Vec<String> = item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                pairs.sort();
                items.push(pairs.join(","));
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        items.sort();
        items
    }
}

pub fn response_json(resp: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body = resp.body();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).expect("JSON response body")
    };
    (status, v)
}

/// A native `message` event.
pub fn user_message(id: &str, session: &str, text: &str) -> Value {
    serde_json::json!({
        "id": id, "type": "message", "sessionId": session, "timestamp": "2026-11-25T09:00:00Z",
        "channel": "web", "user": { "id": "u-7", "name": "Ann", "locale": "en-GB" },
        "message": { "actor": "user", "text": text }
    })
}

pub fn bot_message(id: &str, session: &str, text: &str) -> Value {
    serde_json::json!({
        "id": id, "type": "message", "sessionId": session,
        "message": { "actor": "bot", "text": text, "quickReplies": ["Yes", "No"] }
    })
}

pub fn handover_request(id: &str, session: &str) -> Value {
    serde_json::json!({
        "id": id, "type": "handover.request", "sessionId": session,
        "handover": { "trigger": "explicit_request", "variables": { "orderId": "A-1" }, "tags": ["vip"] }
    })
}

/// A standard bot: native platform, one webhook provider, both pointing at mock servers.
pub struct StandardBot {
    pub bot_id: String,
    pub platform_secret: Vec<u8>,
    pub desk_secret: Vec<u8>,
}

impl TestEnv {
    /// Sets up the standard bot; `extra` is appended to the YAML (e.g. hours or timeouts).
    pub async fn standard_bot(&self, outbound_url: &str, desk_url: &str, extra: &str) -> StandardBot {
        self.standard_bot_named("acme", outbound_url, desk_url, extra).await
    }

    /// [`TestEnv::standard_bot`] under another bot id (a test whose failpoint is keyed by it).
    pub async fn standard_bot_named(
        &self,
        bot_id: &str,
        outbound_url: &str,
        desk_url: &str,
        extra: &str,
    ) -> StandardBot {
        let platform_ref = self
            .secret("platform", &serde_json::json!({ "signingSecret": "bot-secret" }))
            .await;
        let desk_ref = self
            .secret("desk", &serde_json::json!({ "signingSecret": "desk-secret" }))
            .await;
        let yaml = format!(
            "botId: {bot_id}\nplatform:\n  kind: native\n  outboundUrl: {outbound_url}\n  secretRef: {platform_ref}\nproviders:\n  - id: desk\n    kind: webhook\n    url: {desk_url}\n    secretRef: {desk_ref}\nrouting:\n  - provider: desk\n    queue: general\n{extra}"
        );
        self.put_bot(&yaml).await;
        StandardBot {
            bot_id: bot_id.into(),
            platform_secret: b"bot-secret".to_vec(),
            desk_secret: b"desk-secret".to_vec(),
        }
    }
}

/// Checks a request handover sent carries a valid native-scheme signature.
pub fn assert_signed(req: &wiremock::Request, secret: &[u8]) {
    let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ts = h(handover::signing::TIMESTAMP_HEADER);
    let sig = h(handover::signing::SIGNATURE_HEADER);
    let now = ts.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
    handover::signing::verify(secret, ts.as_deref(), sig.as_deref(), &req.body, now).expect("request is signed");
}

/// Every request a mock server received, in order. Panics when the server does not record
/// requests: an empty list must mean "nothing was sent", never "nobody was counting".
pub async fn recorded(server: &wiremock::MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect(
        "the mock server records requests (recording was disabled, so \"nothing received\" would prove nothing)",
    )
}

/// The JSON bodies a mock server received, in order.
pub async fn received(server: &wiremock::MockServer) -> Vec<Value> {
    recorded(server)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// Records the IAM actions behind every AWS request a client sends: DynamoDB and Secrets
/// Manager operations by their target header, transactions by the operations they contain,
/// and queries on an index as `dynamodb:Query@index`.
#[derive(Debug, Default, Clone)]
pub struct ActionRecorder(Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>);

impl ActionRecorder {
    pub fn actions(&self) -> std::collections::BTreeSet<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Intercept for ActionRecorder {
    fn name(&self) -> &'static str {
        "ActionRecorder"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let req = ctx.request();
        let target = req.headers().get("x-amz-target").unwrap_or_default().to_owned();
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut set = self.0.lock().unwrap();
        match target.split_once('.') {
            Some(("DynamoDB_20120810", "TransactWriteItems")) => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    for (kind, action) in [
                        ("Put", "PutItem"),
                        ("Update", "UpdateItem"),
                        ("Delete", "DeleteItem"),
                        ("ConditionCheck", "ConditionCheckItem"),
                    ] {
                        if item.get(kind).is_some() {
                            set.insert(format!("dynamodb:{action}"));
                        }
                    }
                }
            }
            Some(("DynamoDB_20120810", "Query")) if body.get("IndexName").is_some() => {
                set.insert("dynamodb:Query@index".to_owned());
            }
            Some(("DynamoDB_20120810", op)) => {
                set.insert(format!("dynamodb:{op}"));
            }
            Some((_, op)) if target.starts_with("secretsmanager.") => {
                set.insert(format!("secretsmanager:{op}"));
            }
            _ => {
                set.insert(format!("unknown:{target}"));
            }
        }
        Ok(())
    }
}

impl TestEnv {
    /// A context (another function instance) on this test's table, secrets and clock.
    pub fn context_on(
        &self,
        dynamo: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Arc<AppContext> {
        let store = DynamoStore::new(dynamo, self.table().to_owned());
        let cached = CachedSecrets::new(Arc::new(SecretsManager::new(secrets)), Duration::from_secs(300));
        Arc::new(AppContext::new(Arc::new(store), Arc::new(cached), self.clock.clone()).with_retry(test_retry()))
    }

    /// Another process on the same table, secrets and clock (as another Lambda function would
    /// be), whose AWS clients report to `recorder`.
    pub async fn other_function(&self, recorder: &ActionRecorder) -> Arc<AppContext> {
        let sdk = emulator_sdk().await;
        let dynamo = dynamo_with(&sdk, recorder.clone());
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&sdk)
                .interceptor(recorder.clone())
                .build(),
        );
        self.context_on(dynamo, secrets)
    }
}

/// Counts AWS requests per operation (`GetItem`, `BatchWriteItem`, …).
#[derive(Debug, Default, Clone)]
pub struct OpCounter(Arc<std::sync::Mutex<std::collections::BTreeMap<String, usize>>>);

impl OpCounter {
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        self.0.lock().unwrap().clone()
    }

    pub fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for OpCounter {
    fn name(&self) -> &'static str {
        "OpCounter"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

/// Fails the next `n` commits (the transactions that write an idempotency marker) before they
/// reach DynamoDB, as a throttled or lost request would: the engine sees a store error.
#[derive(Debug, Clone)]
pub struct FailingCommits(Arc<AtomicUsize>);

impl FailingCommits {
    pub fn next(n: usize) -> FailingCommits {
        FailingCommits(Arc::new(AtomicUsize::new(n)))
    }

    /// How many of the `n` are still to fail.
    pub fn left(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for FailingCommits {
    fn name(&self) -> &'static str {
        "FailingCommits"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let req = ctx.request();
        let is_commit = req.headers().get("x-amz-target") == Some("DynamoDB_20120810.TransactWriteItems")
            && req
                .body()
                .bytes()
                .is_some_and(|b| String::from_utf8_lossy(b).contains("\"SEEN#"));
        if is_commit
            && self
                .0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err("injected: the commit did not reach DynamoDB".into());
        }
        Ok(())
    }
}

impl TestEnv {
    /// This test's table through a DynamoDB client with `interceptor` (emulator worlds only).
    pub async fn store_with(&self, interceptor: impl Intercept + 'static) -> Arc<dyn Store> {
        let dynamo = dynamo_with(&emulator_sdk().await, interceptor);
        Arc::new(DynamoStore::new(dynamo, self.table().to_owned()))
    }

    /// A context on this test's table whose DynamoDB client counts requests per operation.
    pub async fn counted_function(&self, counter: &OpCounter) -> Arc<AppContext> {
        let sdk = emulator_sdk().await;
        let dynamo = dynamo_with(&sdk, counter.clone());
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        self.context_on(dynamo, secrets)
    }
}

/// A DynamoDB client on the emulator whose requests pass through `interceptor`.
fn dynamo_with(sdk: &aws_config::SdkConfig, interceptor: impl Intercept + 'static) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(interceptor)
            .build(),
    )
}

/// The requests a mock server received with this method and path, in order.
pub async fn requests_to(srv: &wiremock::MockServer, verb: &str, path: &str) -> Vec<wiremock::Request> {
    recorded(srv)
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == path)
        .collect()
}

/// A received request's JSON body.
pub fn json_of(r: &wiremock::Request) -> Value {
    serde_json::from_slice(&r.body).expect("a JSON body")
}

/// The JSON bodies POSTed to `path` whose `field` is `value`, in the order received.
pub async fn posted_with(srv: &wiremock::MockServer, path: &str, field: &str, value: &str) -> Vec<Value> {
    requests_to(srv, "POST", path)
        .await
        .iter()
        .map(json_of)
        .filter(|b| b[field] == value)
        .collect()
}

/// A received request's header, as text.
pub fn header_of(r: &wiremock::Request, name: &str) -> Option<String> {
    r.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

impl TestEnv {
    /// Runs the evaluator, then returns the agent presence it stored for `provider/queue`
    /// (`None` when nothing was stored; `Some(None)` when the provider could not tell).
    pub async fn refreshed_presence(&self, bot_id: &str, provider_id: &str, queue: &str) -> Option<Option<bool>> {
        handover::app::evaluator::run(&self.ctx, self.now()).await;
        let (_, stored) = self
            .store
            .intake_state(bot_id, &[provider_id.to_owned()])
            .await
            .expect("availability readable");
        stored?
            .agents
            .get(&handover::domain::Conditions::no_agents_key(provider_id, queue))
            .map(|p| p.online)
    }
}

/// The bodies of one event type among those a mock received.
pub fn of_type<'a>(bodies: &'a [Value], t: &str) -> Vec<&'a Value> {
    bodies.iter().filter(|b| b["type"] == t).collect()
}

impl TestEnv {
    /// Moves the clock on and runs the evaluator once, as the schedule would.
    pub async fn tick_minutes(&self, minutes: i64) -> handover::app::evaluator::Report {
        self.clock.advance(chrono::Duration::minutes(minutes));
        handover::app::evaluator::run(&self.ctx, self.now()).await
    }
}

/// Moves the clock on and runs the evaluator once (`env.tick_minutes`).
pub async fn tick_minutes(env: &TestEnv, minutes: i64) -> handover::app::evaluator::Report {
    env.tick_minutes(minutes).await
}
