//! The hours-evaluator Lambda function, run every minute by the `EvaluatorRun` state machine
//! (started by EventBridge Scheduler): the scheduled run, then one invocation per shard it hands
//! on (`evaluator::handle_until` tells them apart).

use handover::app::{AppContext, evaluator};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    handover::app::logging::init();
    let ctx: &'static AppContext = Box::leak(Box::new(AppContext::from_env().await));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = evaluator::deadline_from(event.context.deadline());
        Ok::<_, Error>(evaluator::handle_until(ctx, &event.payload, deadline).await)
    }))
    .await
}
