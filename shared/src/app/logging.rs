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

/// The Lambda runtime's crates: at `trace`, `lambda_runtime` logs every raw event it receives
/// (every header, the query string with Chatlayer's `token=`, the body). Capped at `info`
/// whatever `RUST_LOG` says; their errors and warnings are kept.
pub const RUNTIME_LOGGERS: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// The filter from `RUST_LOG` (default `info`), with [`PAYLOAD_LOGGERS`] and
/// [`RUNTIME_LOGGERS`] capped.
pub fn filter() -> tracing_subscriber::EnvFilter {
    filter_for(&std::env::var("RUST_LOG").unwrap_or_default())
}

/// The filter for a `RUST_LOG`-style spec (`info` when empty or invalid), with
/// [`PAYLOAD_LOGGERS`] and [`RUNTIME_LOGGERS`] capped.
pub fn filter_for(spec: &str) -> tracing_subscriber::EnvFilter {
    let mut filter = tracing_subscriber::EnvFilter::try_new(if spec.trim().is_empty() { "info" } else { spec })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let caps = PAYLOAD_LOGGERS
        .iter()
        .map(|t| (t, "warn"))
        .chain(RUNTIME_LOGGERS.iter().map(|t| (t, "info")));
    for (target, level) in caps {
        if let Ok(cap) = format!("{target}={level}").parse() {
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

#[cfg(test)]
mod tests {
    #[test]
    fn engine_errors_never_print_a_session_id() {
        let e = crate::app::engine::EngineError::UnknownSession("+32470123456".into());
        assert!(!e.to_string().contains("32470123456"), "{e}");
        assert!(!format!("{e:#}").contains("32470123456"), "{e:#}");
    }

    #[test]
    fn the_runtime_crates_are_capped_at_info() {
        use tracing::level_filters::LevelFilter;
        let filter = super::filter_for("trace");
        let text = filter.to_string();
        for target in super::RUNTIME_LOGGERS {
            assert!(text.contains(&format!("{target}=info")), "{text}");
        }
        assert_eq!(
            filter.max_level_hint(),
            Some(LevelFilter::TRACE),
            "the rest stays at trace"
        );
    }
}
