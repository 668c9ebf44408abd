//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per data point, which
//! Lambda's log pipeline turns into metrics without an API call on the hot path.

use serde_json::json;

/// Emits `name` in namespace `Handover`, without dimensions (what alarms watch) and per bot.
pub fn count(name: &str, value: u64, bot_id: &str) {
    let line = json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "Handover",
                "Dimensions": [[], ["botId"]],
                "Metrics": [{ "Name": name, "Unit": "Count" }]
            }]
        },
        "botId": bot_id,
        name: value,
    });
    println!("{line}");
}
