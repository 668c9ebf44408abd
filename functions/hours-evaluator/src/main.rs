//! The hours-evaluator Lambda function, run every minute by EventBridge Scheduler.

use handover::app::{AppContext, evaluator};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    handover::app::logging::init();
    let ctx: &'static AppContext = Box::leak(Box::new(AppContext::from_env().await));
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report = evaluator::run(ctx, ctx.clock.now()).await;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
