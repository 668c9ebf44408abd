//! Structured JSON logs for Lambda (CloudWatch Logs Insights can query the fields). Level from
//! `RUST_LOG`, default `info`. Message text and secrets are never logged by this crate.

/// Crates whose debug and trace output carries request and response payloads (message text,
/// tokens, signed headers): capped at `warn` whatever `RUST_LOG` says.
pub const PAYLOAD_LOGGERS: [&str; 9] = [
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_config",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
];

/// The filter from `RUST_LOG` (default `info`), with [`PAYLOAD_LOGGERS`] capped.
pub fn filter() -> tracing_subscriber::EnvFilter {
    filter_for(&std::env::var("RUST_LOG").unwrap_or_default())
}

/// The filter for a `RUST_LOG`-style spec (`info` when empty or invalid), with
/// [`PAYLOAD_LOGGERS`] capped.
pub fn filter_for(spec: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_new(if spec.trim().is_empty() { "info" } else { spec })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in PAYLOAD_LOGGERS {
        if let Ok(cap) = format!("{target}=warn").parse() {
            filter = filter.add_directive(cap);
        }
    }
    filter
}

pub fn init() {
    let filter = filter();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// The subscriber of [`init`] for `spec`, writing to `writer`: tests capture what Lambda would
/// log with it (the log scan, tests/tests/it/log_scan.rs).
pub fn install<W>(spec: &str, writer: W) -> Result<(), tracing_subscriber::util::TryInitError>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter_for(spec))
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .with_writer(writer)
        .finish()
        .try_init()
}
