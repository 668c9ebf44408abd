//! `handover serve`: the deployed request path, locally. Each HTTP request becomes the API
//! Gateway HTTP API 2.0 event Lambda would receive and is parsed by `lambda_http`, so the local
//! stack exercises the same parsing and routing as production.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::body::{Body as AxumBody, Bytes};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use handover::app::routes::{self, Function};
use handover::app::{AppContext, bot_webhook, evaluator, local, provider_callback};

pub async fn run(addr: &str, evaluate_every: u64, playground_bot: &str, print_metrics: bool) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
    // Metric lines (EMF) would drown the output; Lambda prints them, here they are opt-in.
    let metrics: Arc<dyn handover::metrics::Sink> = if print_metrics {
        Arc::new(handover::metrics::Stdout)
    } else {
        Arc::new(handover::metrics::Discard)
    };
    let config_ttl = Duration::from_secs(2);
    let ctx = Arc::new(
        AppContext::from_env()
            .await
            .with_bot_cache_ttl(config_ttl)
            .with_metrics(metrics),
    );
    let evaluator_ctx = ctx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(evaluate_every.max(1)));
        loop {
            tick.tick().await;
            let report = evaluator::run(&evaluator_ctx, evaluator_ctx.clock.now()).await;
            // Quiet unless something happened (every run refreshes availability).
            let busy = report.sessions + report.availability_written + report.errors > 0;
            if busy {
                eprintln!("evaluator: {}", serde_json::to_string(&report).unwrap_or_default());
            }
        }
    });
    // The playground's page and hooks (local only), in front of the routes of template.yaml.
    let playground = crate::playground::router(addr, playground_bot, config_ttl).await;
    let app = playground.fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let ctx = ctx.clone();
        async move { dispatch(&ctx, method, uri, headers, body).await }
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("handover serving on http://{addr} (playground for bot {playground_bot:?} at http://{addr}/)");
    for r in routes::ROUTES.iter() {
        eprintln!("  {:<5} {}  -> {}", r.method, r.path, r.function.binary());
    }
    axum::serve(listener, app).await?;
    Ok(())
}

async fn dispatch(ctx: &AppContext, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response<AxumBody> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let event = local::apigw_v2_event(method.as_str(), target, &pairs, &body);
    let response = match local::to_request(&event) {
        Err(e) => handover::app::ApiError::bad_request("bad_event", e).into_response(),
        Ok(req) => match routes::find(method.as_str(), uri.path()).map(|(r, _)| r.function) {
            Some(Function::BotWebhook) => bot_webhook::handle(ctx, req).await,
            Some(Function::ProviderCallback) => provider_callback::handle(ctx, req).await,
            None if routes::path_exists(uri.path()) => {
                handover::app::ApiError::new(405, "method_not_allowed", "method not allowed on this route")
                    .into_response()
            }
            None => handover::app::ApiError::not_found("unknown_route", format!("no route {:?}", uri.path()))
                .into_response(),
        },
    };
    eprintln!("{} {} -> {}", method, uri.path(), response.status().as_u16());
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = body.to_vec();
    Response::from_parts(parts, AxumBody::from(bytes))
}
