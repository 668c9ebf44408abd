//! The local path: an HTTP request turned into the API Gateway HTTP API (payload 2.0) event
//! the deployed function receives, then parsed by `lambda_http` exactly as in Lambda.

use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};

use super::routes;

/// Builds the event JSON for a request. `path_and_query` is the request target.
pub fn apigw_v2_event(method: &str, path_and_query: &str, headers: &[(String, String)], body: &[u8]) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let (route_key, params) = match routes::find(method, path) {
        // A platform's request arrives through the template's one route for all platforms.
        Some((r, p)) if r.function == routes::Function::BotWebhook => {
            let proxy = path.splitn(5, '/').nth(4).unwrap_or_default();
            let params = [("botId", p["botId"].as_str()), ("proxy", proxy)]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into_iter()
                .collect();
            (
                format!("{} {}", routes::PLATFORM_GATEWAY_METHOD, routes::PLATFORM_GATEWAY_PATH),
                Some(params),
            )
        }
        Some((r, p)) => (format!("{} {}", r.method, r.path), Some(p)),
        None => ("$default".to_owned(), None),
    };
    let mut hmap = serde_json::Map::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        match hmap.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(v);
            }
            _ => {
                hmap.insert(k, json!(v));
            }
        }
    }
    let host = hmap
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    let now = Utc::now();
    let (body_value, is_b64) = match std::str::from_utf8(body) {
        Ok(s) => (json!(s), false),
        Err(_) => (json!(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": hmap,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v.as_str()).unwrap_or("")
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis()
        },
        "isBase64Encoded": is_b64
    });
    if !body.is_empty() {
        event["body"] = body_value;
    }
    if let Some(p) = params {
        event["pathParameters"] = json!(p);
    }
    event
}

/// Parses an event as the Lambda runtime does.
pub fn to_request(event: &Value) -> Result<lambda_http::Request, String> {
    lambda_http::request::from_str(&event.to_string()).map_err(|e| e.to_string())
}
