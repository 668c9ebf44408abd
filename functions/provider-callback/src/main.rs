//! The provider-callback Lambda function: clients are built once per container, then every request goes
//! to `handover::app::provider_callback::handle`.

use handover::app::{AppContext, provider_callback};
use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    handover::app::logging::init();
    let ctx: &'static AppContext = Box::leak(Box::new(AppContext::from_env().await));
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(provider_callback::handle(ctx, req).await)
    }))
    .await
}
