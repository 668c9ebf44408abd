//! A local Lambda Runtime API, and the real function binaries started against it.
//!
//! AWS starts a function's `bootstrap` with `AWS_LAMBDA_RUNTIME_API=host:port`; the runtime
//! client in the binary then long-polls `GET /2018-06-01/runtime/invocation/next` for an event
//! and posts the answer to `/invocation/{id}/response` (or `/error`; `/init/error` when the
//! function cannot start). [`RuntimeApi`] serves those four endpoints on a free local port and
//! hands events in and answers out; [`FunctionProcess`] runs a binary from the target directory
//! against it, with the table, the emulator endpoint and dummy credentials in its environment.
//!
//! The binaries are not built by `cargo test`: `make test` builds them first
//! (`cargo build -p bot-webhook -p provider-callback -p hours-evaluator`), and a missing binary
//! fails the test with that command.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// The Runtime API's version prefix.
pub const PREFIX: &str = "/2018-06-01/runtime";

/// How long an invocation may take before the test gives up on it.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body posted to `/invocation/{id}/response`.
    Response(Vec<u8>),
    /// The body posted to `/invocation/{id}/error`, with its `Lambda-Runtime-Function-Error-Type`.
    Error { error_type: Option<String>, body: Vec<u8> },
}

struct Invocation {
    id: String,
    event: Vec<u8>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// When each `/next` request arrived (the first one ends the function's init).
    next_requests: Mutex<Vec<Instant>>,
    init_error: Mutex<Option<Vec<u8>>>,
}

/// A Runtime API for one function process, served on a free port of 127.0.0.1.
pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Invocation>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            next_requests: Mutex::new(Vec::new()),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(invocation_error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            shared,
            sender,
            server,
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: &[u8], timeout: Duration) -> Result<Outcome, String> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.sender
            .send(Invocation {
                id: id.clone(),
                event: event.to_vec(),
            })
            .map_err(|_| "the Runtime API has stopped".to_owned())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(format!("invocation {id} was dropped")),
            Err(_) => {
                self.shared.waiting.lock().unwrap().remove(&id);
                Err(format!("no answer to invocation {id} within {timeout:?}"))
            }
        }
    }

    /// When each `/next` request arrived so far.
    pub fn next_requests(&self) -> Vec<Instant> {
        self.shared.next_requests.lock().unwrap().clone()
    }

    /// What the function posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<Vec<u8>> {
        self.shared.init_error.lock().unwrap().clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    shared.next_requests.lock().unwrap().push(Instant::now());
    let Some(inv) = shared.queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Vec::new());
    };
    let deadline = SystemTime::now() + INVOKE_TIMEOUT;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, value.parse().expect("a header value"));
    };
    set("lambda-runtime-aws-request-id", inv.id);
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:eu-west-1:123456789012:function:local".to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
    );
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, inv.event)
}

fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    finish(&shared, &id, Outcome::Response(body.to_vec()))
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    finish(
        &shared,
        &id,
        Outcome::Error {
            error_type,
            body: body.to_vec(),
        },
    )
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().unwrap() = Some(body.to_vec());
    StatusCode::ACCEPTED
}

/// The three functions of template.yaml, by binary name.
pub const FUNCTIONS: [&str; 3] = ["bot-webhook", "provider-callback", "hours-evaluator"];

/// The directory holding the function binaries of the profile this program was built with:
/// `HANDOVER_FUNCTIONS_DIR`, or the target directory's profile folder (the parent of `deps/`).
pub fn binaries_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HANDOVER_FUNCTIONS_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("the test binary's folder");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("the profile folder").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// A function binary, failing with the command that builds it when it is absent.
pub fn function_binary(name: &str, build_hint: &str) -> PathBuf {
    let path = binaries_dir().join(name);
    assert!(
        path.is_file(),
        "the function binary {} is missing: build it first with `{build_hint}` \
         (`make test` does), or point HANDOVER_FUNCTIONS_DIR at the folder holding it",
        path.display()
    );
    path
}

/// The command `make test` runs to build the functions for the tests.
pub const TEST_BUILD: &str = "cargo build -p bot-webhook -p provider-callback -p hours-evaluator";

/// A function binary running against its own [`RuntimeApi`]; killed when dropped.
pub struct FunctionProcess {
    pub name: String,
    pub api: RuntimeApi,
    child: Child,
    log: PathBuf,
    /// When the process was spawned.
    pub spawned_at: Instant,
}

/// The environment Lambda gives a function, for a local emulator and table.
pub fn lambda_env(name: &str, endpoint: &str, table: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/local"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("TABLE_NAME", table),
        ("RUST_LOG", "info"),
        // The mock servers listen on http://127.0.0.1 (crate::url_policy of the library).
        (handover::url_policy::LOCAL_URLS_ENV, "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl FunctionProcess {
    /// Starts `binary` with `env` (and nothing inherited but `PATH`) against a fresh Runtime API.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> FunctionProcess {
        let api = RuntimeApi::start().await;
        let name = binary.file_name().unwrap().to_string_lossy().into_owned();
        let log = std::env::temp_dir().join(format!("{name}-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&log).expect("a log file");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out);
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        FunctionProcess {
            name,
            api,
            child,
            log,
            spawned_at,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits until the function asks for its first event; returns the time since spawn.
    pub async fn ready(&mut self) -> Duration {
        let deadline = Instant::now() + INVOKE_TIMEOUT;
        loop {
            if let Some(first) = self.api.next_requests().first() {
                return first.duration_since(self.spawned_at);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited during init ({status}); init error: {:?}\n{}",
                    self.name,
                    self.api.init_error().map(|b| String::from_utf8_lossy(&b).into_owned()),
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not ask for an event:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Sends one event; the function's raw answer.
    pub async fn invoke(&mut self, event: &Value) -> Outcome {
        let bytes = serde_json::to_vec(event).unwrap();
        match self.api.invoke(&bytes, INVOKE_TIMEOUT).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let status = self.child.try_wait().ok().flatten();
                panic!("{}: {e} (exit status: {status:?})\n{}", self.name, self.output())
            }
        }
    }

    /// Sends one event and expects a successful answer, as JSON.
    pub async fn invoke_json(&mut self, event: &Value) -> Value {
        match self.invoke(event).await {
            Outcome::Response(body) => serde_json::from_slice(&body).expect("a JSON answer"),
            Outcome::Error { error_type, body } => panic!(
                "{} answered an error ({error_type:?}): {}\n{}",
                self.name,
                String::from_utf8_lossy(&body),
                self.output()
            ),
        }
    }

    /// Sends an API Gateway HTTP API (payload 2.0) event; the status and JSON body of the
    /// response API Gateway would build from the answer.
    pub async fn invoke_http(&mut self, event: &Value) -> (u16, Value) {
        let answer = self.invoke_json(event).await;
        http_answer(&answer)
    }
}

/// Reads an API Gateway v2 proxy response (`statusCode`, `body`, `isBase64Encoded`).
pub fn http_answer(answer: &Value) -> (u16, Value) {
    let status = answer["statusCode"].as_u64().expect("a statusCode") as u16;
    let body = match answer["body"].as_str() {
        None | Some("") => Value::Null,
        Some(text) => {
            assert_ne!(answer["isBase64Encoded"], json!(true), "a JSON body is sent as text");
            serde_json::from_str(text).expect("a JSON body")
        }
    };
    (status, body)
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
