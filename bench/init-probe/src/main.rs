//! Times each step of a function's initialisation in a fresh process and prints them as one
//! JSON line (microseconds), for `make bench`. `init-probe aws-config` follows
//! `AppContext::from_env` (the default AWS configuration chain, the SDK's HTTP client over the
//! process's one TLS configuration, `handover::tls`); `init-probe env` builds the same clients
//! from the Lambda environment variables alone; `init-probe env-sdk-tls` builds them from the
//! environment with the SDK's own default HTTP client (its own copy of the system roots), as
//! the functions did before the shared configuration. Each then builds the outbound client and
//! sends two DynamoDB requests (`DescribeTable` on `TABLE_NAME`), whose time includes whatever
//! the clients left lazy.

use std::time::Instant;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "aws-config".to_owned());
    let start = Instant::now();
    let mut phases: Vec<(&str, u128)> = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |name: &'static str, phases: &mut Vec<(&str, u128)>| {
            phases.push((name, last.elapsed().as_micros()));
            last = Instant::now();
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    lap("tokio_runtime", &mut phases);
    handover::app::logging::init();
    lap("logging_init", &mut phases);
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "handover".to_owned());
    rt.block_on(async {
        // The SDK's default client brings its own TLS set-up; the others share the process's.
        let shared_tls = mode != "env-sdk-tls";
        if shared_tls {
            drop(handover::tls::client_config());
            lap("tls_config", &mut phases);
        }
        let (dynamo, _secrets) = if mode.starts_with("env") {
            let env = |k: &str| std::env::var(k).unwrap_or_default();
            let creds = Credentials::new(
                env("AWS_ACCESS_KEY_ID"),
                env("AWS_SECRET_ACCESS_KEY"),
                std::env::var("AWS_SESSION_TOKEN").ok(),
                None,
                "environment",
            );
            let region = Region::new(env("AWS_REGION"));
            let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
            // One HTTP client for both SDK clients, as `AppContext::from_env` has (one pool).
            let sdk_http = handover::tls::sdk_http_client();
            lap("sdk_config", &mut phases);
            let mut d = aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region.clone())
                .credentials_provider(creds.clone());
            if let Some(e) = &endpoint {
                d = d.endpoint_url(e);
            }
            if shared_tls {
                d = d.http_client(sdk_http.clone());
            }
            let dynamo = aws_sdk_dynamodb::Client::from_conf(d.build());
            lap("dynamodb_client", &mut phases);
            let mut s = aws_sdk_secretsmanager::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region)
                .credentials_provider(creds);
            if let Some(e) = &endpoint {
                s = s.endpoint_url(e);
            }
            if shared_tls {
                s = s.http_client(sdk_http);
            }
            let secrets = aws_sdk_secretsmanager::Client::from_conf(s.build());
            lap("secrets_client", &mut phases);
            (dynamo, secrets)
        } else {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .timeout_config(handover::app::context::sdk_timeouts())
                .http_client(handover::tls::sdk_http_client())
                .load()
                .await;
            lap("sdk_config", &mut phases);
            let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
            lap("dynamodb_client", &mut phases);
            let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
            lap("secrets_client", &mut phases);
            (dynamo, secrets)
        };
        let http = handover::delivery::http_client();
        lap("reqwest_client", &mut phases);
        drop(http);
        let _ = dynamo.describe_table().table_name(&table).send().await;
        lap("first_dynamodb_request", &mut phases);
        let _ = dynamo.describe_table().table_name(&table).send().await;
        lap("second_dynamodb_request", &mut phases);
    });
    let fields: Vec<String> = phases.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    println!(
        "{{\"mode\":\"{mode}\",{},\"total\":{}}}",
        fields.join(","),
        start.elapsed().as_micros()
    );
}
