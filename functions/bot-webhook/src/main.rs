//! The bot-webhook Lambda function: clients are built once per container, then every request goes
//! to `handover::app::bot_webhook::handle`.

use handover::app::{AppContext, bot_webhook};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handover::app::logging::init();
    let ctx: &'static AppContext = Box::leak(Box::new(AppContext::from_env().await));
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(bot_webhook::handle(ctx, req).await)
    }))
    .await
}
