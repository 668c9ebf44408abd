//! Structured JSON logs for Lambda (CloudWatch Logs Insights can query the fields). Level from
//! `RUST_LOG`, default `info`. Message text and secrets are never logged by this crate.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .try_init();
}
