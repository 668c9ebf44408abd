//! template.yaml as an operator deploys it: parameters that cannot produce a broken stack, two
//! stacks side by side in one account, a first deploy on a new account's quotas, and safe
//! deployments (alias, gradual shift, retained data and logs).

use handover::metrics;
use handover::store::schema::TEMPLATE;
use proptest::prelude::*;
use regex::Regex;
use serde_yaml_ng::Value as Yaml;

fn template() -> Yaml {
    serde_yaml_ng::from_str(TEMPLATE).expect("template.yaml parses")
}

fn untag(v: &Yaml) -> &Yaml {
    match v {
        Yaml::Tagged(t) => &t.value,
        other => other,
    }
}

/// A `!Sub` string (or a plain one) with the pseudo parameters of a stack filled in.
fn resolve(v: &Yaml, stack: &str) -> String {
    untag(v)
        .as_str()
        .unwrap_or_else(|| panic!("a string or !Sub string: {v:?}"))
        .replace("${AWS::StackName}", stack)
        .replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", "eu-west-1")
        .replace("${AWS::AccountId}", "123456789012")
}

/// A parameter's AllowedPattern as CloudFormation applies it: to the whole value.
fn allowed(t: &Yaml, parameter: &str) -> impl Fn(&str) -> bool {
    let p = &t["Parameters"][parameter];
    let re = Regex::new(p["AllowedPattern"].as_str().expect("an AllowedPattern")).unwrap();
    let (min, max) = (p["MinLength"].as_u64(), p["MaxLength"].as_u64());
    move |v: &str| {
        re.find(v).is_some_and(|m| m.start() == 0 && m.end() == v.len())
            && min.is_none_or(|n| v.len() as u64 >= n)
            && max.is_none_or(|n| v.len() as u64 <= n)
    }
}

/// The public path of a route under a stage, as the outputs build it.
fn public_path(stage: &str) -> String {
    format!("/{stage}/v1/bots/acme/events")
}

#[test]
fn no_stage_name_gives_a_doubled_api_version() {
    let t = template();
    let ok = allowed(&t, "Stage");
    let default = t["Parameters"]["Stage"]["Default"].as_str().unwrap();
    assert!(ok(default), "the default {default} is allowed");
    for good in [
        "live",
        "staging",
        "prod-1",
        "v",
        "V",
        "version",
        "v1beta",
        "v2_eu",
        "blue_green",
    ] {
        assert!(ok(good), "{good} should be allowed");
    }
    for bad in [
        "v1",
        "V1",
        "v2",
        "v10",
        "v007",
        "",
        "live/v1",
        "a b",
        "x".repeat(65).as_str(),
    ] {
        assert!(!ok(bad), "{bad:?} should be refused");
    }
}

proptest! {
    /// Over any short stage name: allowed exactly when it is made of the permitted characters
    /// and is not "v" + digits; and no allowed one gives a URL that starts with two versions.
    #[test]
    fn every_allowed_stage_gives_one_api_version(stage in "[vV1-3a_/ -]{0,5}") {
        let t = template();
        let ok = allowed(&t, "Stage");
        let versioned = Regex::new("^[vV][0-9]+$").unwrap();
        let plain = Regex::new("^[A-Za-z0-9_-]{1,64}$").unwrap();
        prop_assert_eq!(ok(&stage), plain.is_match(&stage) && !versioned.is_match(&stage), "{:?}", stage);
        if ok(&stage) {
            let path = public_path(&stage);
            let segments: Vec<&str> = path.split('/').collect();
            prop_assert!(!versioned.is_match(segments[1]), "{}", path);
        }
    }
}

#[test]
fn log_level_refuses_trace() {
    let t = template();
    let ok = allowed(&t, "LogLevel");
    assert!(ok(t["Parameters"]["LogLevel"]["Default"].as_str().unwrap()));
    for good in [
        "info",
        "warn",
        "error",
        "debug",
        "off",
        "info,handover=debug",
        "warn,handover::app=info",
    ] {
        assert!(ok(good), "{good} should be allowed");
    }
    for bad in [
        "trace",
        "TRACE",
        "Trace",
        "info,handover=trace",
        "trace,aws_sdk_dynamodb=warn",
        "handover=trace",
        "info,trace",
        "",
    ] {
        assert!(!ok(bad), "{bad:?} should be refused");
    }
}

/// The secret ARN pattern each function's IAM policy grants.
fn secret_grants(t: &Yaml, stack: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        for policy in r["Properties"]["Policies"].as_sequence().unwrap() {
            for st in policy["Statement"].as_sequence().unwrap() {
                if st["Action"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|a| a.as_str() == Some("secretsmanager:GetSecretValue"))
                {
                    for res in st["Resource"].as_sequence().unwrap() {
                        out.push(resolve(res, stack));
                    }
                }
            }
        }
    }
    out
}

/// Whether an IAM resource pattern (only `*` as a wildcard, at the end) matches an ARN.
fn grants(pattern: &str, arn: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => arn.starts_with(prefix),
        None => pattern == arn,
    }
}

#[test]
fn two_stacks_have_their_own_metric_namespace_and_secret_prefix() {
    let t = template();
    let var = &t["Globals"]["Function"]["Environment"]["Variables"][metrics::NAMESPACE_VAR];
    let (a, b) = ("handover-staging", "handover-production");
    // What each stack's code publishes under: the variable, read as the code reads it.
    let ns_a = metrics::namespace_from(Some(&resolve(var, a)));
    let ns_b = metrics::namespace_from(Some(&resolve(var, b)));
    assert_ne!(ns_a, ns_b);
    assert_ne!(ns_a, metrics::DEFAULT_NAMESPACE);
    assert_eq!(
        metrics::namespace_from(None),
        metrics::DEFAULT_NAMESPACE,
        "local default"
    );

    // Every alarm on an application metric watches its own stack's namespace.
    let mut watched = 0;
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let text = serde_yaml_ng::to_string(&r["Properties"]).unwrap();
        for ns in text.lines().filter_map(|l| l.trim().strip_prefix("Namespace: ")) {
            if ns.starts_with("AWS/") {
                continue;
            }
            watched += 1;
            let ns = ns.trim_start_matches("!Sub ");
            assert_eq!(
                ns.replace("${AWS::StackName}", a),
                ns_a,
                "{name:?} watches {ns}, not the namespace its stack publishes in"
            );
        }
    }
    assert!(watched >= 4, "alarms on application metrics: {watched}");

    // Secrets: each stack reads only its own prefix.
    let (grants_a, grants_b) = (secret_grants(&t, a), secret_grants(&t, b));
    assert_eq!(grants_a.len(), 3, "one grant per function");
    let secret = |stack: &str, name: &str| {
        format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:{stack}/acme/{name}-AbCdEf")
    };
    for g in &grants_a {
        assert!(grants(g, &secret(a, "platform")), "{g}");
        assert!(
            !grants(g, &secret(b, "platform")),
            "{g} reads the other stack's secrets"
        );
        // Nor those of a stack whose name starts with this one's, nor another application's.
        assert!(!grants(g, &secret(&format!("{a}-2"), "platform")), "{g}");
        assert!(!grants(
            g,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:handover/acme/platform-AbCdEf"
        ));
    }
    for g in &grants_b {
        assert!(!grants(g, &secret(a, "platform")), "{g}");
    }
    // The output operators read the prefix from is the one IAM grants.
    let prefix = resolve(&t["Outputs"]["SecretPrefix"]["Value"], a);
    assert!(
        grants_a.iter().all(|g| g.ends_with(&format!("secret:{prefix}*"))),
        "{prefix}"
    );

    // samconfig.toml: one environment per stack, each with its own stack name.
    let samconfig = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml")).unwrap();
    for (env, stack) in [("default", "handover"), ("staging", a), ("production", b)] {
        let section = format!("[{env}.global.parameters]\nstack_name = \"{stack}\"");
        assert!(samconfig.contains(&section), "samconfig.toml lacks {section}");
    }
}

#[test]
fn a_new_account_can_deploy_it() {
    let t = template();
    // No reservation unless asked for: a new account's concurrency quota (10) cannot spare one.
    let p = &t["Parameters"]["EvaluatorReservedConcurrency"];
    assert_eq!(p["Default"].as_u64(), Some(0));
    let reserved = &t["Resources"]["HoursEvaluatorFunction"]["Properties"]["ReservedConcurrentExecutions"];
    let text = serde_yaml_ng::to_string(reserved).unwrap();
    assert!(
        text.contains("!If") && text.contains("ReserveEvaluator") && text.contains("AWS::NoValue"),
        "{text}"
    );
    let condition = serde_yaml_ng::to_string(&t["Conditions"]["ReserveEvaluator"]).unwrap();
    assert!(condition.contains("EvaluatorReservedConcurrency"), "{condition}");
    for (_, r) in t["Resources"].as_mapping().unwrap() {
        assert!(
            r["Properties"]["ReservedConcurrentExecutions"].as_u64().is_none(),
            "no unconditional reservation"
        );
    }

    // One architecture, the one `make build` builds, and no parameter to get it wrong.
    assert!(t["Parameters"].get("Architecture").is_none());
    let arch: Vec<&str> = t["Globals"]["Function"]["Architectures"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(arch, ["arm64"]);
    let makefile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Makefile")).unwrap();
    assert!(makefile.contains("arm64"), "make build builds arm64");

    // A failed or late scheduled run is not retried, by the scheduler nor by Lambda.
    let f = &t["Resources"]["HoursEvaluatorFunction"]["Properties"];
    assert_eq!(f["EventInvokeConfig"]["MaximumRetryAttempts"].as_u64(), Some(0));
    let schedule = &t["Resources"]["EvaluatorRun"]["Properties"]["Events"]["EveryMinute"];
    let retry = &schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"];
    assert_eq!(retry.as_u64(), Some(0));
}

#[test]
fn deployments_shift_gradually_and_keep_data_and_logs() {
    let t = template();
    let g = &t["Globals"]["Function"];
    assert_eq!(g["AutoPublishAlias"].as_str(), Some("live"));
    let alarms: Vec<String> = g["DeploymentPreference"]["Alarms"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| untag(a).as_str().unwrap().to_owned())
        .collect();
    assert!(!alarms.is_empty());
    for a in &alarms {
        assert_eq!(
            t["Resources"][a.as_str()]["Type"].as_str(),
            Some("AWS::CloudWatch::Alarm"),
            "rollback alarm {a}"
        );
    }
    let table = &t["Resources"]["HandoverTable"];
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"].as_bool(), Some(true));
    assert_eq!(
        table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    let mut groups = 0;
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Logs::LogGroup") {
            groups += 1;
            assert_eq!(r["DeletionPolicy"].as_str(), Some("Retain"), "{name:?}");
            assert!(r["Properties"].get("RetentionInDays").is_some(), "{name:?}");
        }
    }
    assert_eq!(groups, 4);
    for output in [
        "ChatlayerWebhookUrl",
        "NativeEventsUrl",
        "ProviderCallbackUrlPattern",
        "DashboardUrl",
        "BotWebhookFunctionName",
        "ProviderCallbackFunctionName",
        "HoursEvaluatorFunctionName",
        "SecretPrefix",
        "MetricsNamespace",
    ] {
        assert!(t["Outputs"].get(output).is_some(), "output {output}");
    }
}

/// `sam deploy --guided` asks once per HTTP route without an authorizer, naming the function;
/// the guide lists each question with how many times it comes.
#[test]
fn the_guide_answers_every_unauthenticated_route_prompt() {
    let t = template();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/deploy.md")).unwrap();
    let mut prompts = 0;
    for (name, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().unwrap();
        let open_routes = r["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["Type"].as_str() == Some("HttpApi") && e["Properties"].get("Auth").is_none())
            .count();
        if open_routes == 0 {
            continue;
        }
        prompts += open_routes;
        let times = match open_routes {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        };
        let line = format!("`{name} has no authentication. Is this okay? [y/N]:` — asked **{times}**");
        assert!(doc.contains(&line), "docs/deploy.md lacks {line:?}");
    }
    assert!(
        prompts > 0,
        "the HTTP routes are public and authenticated by the functions"
    );
}

#[test]
fn every_function_gets_the_stacks_own_generated_log_reference_key() {
    let t = template();
    let var = &t["Globals"]["Function"]["Environment"]["Variables"][handover::store::LOG_KEY_ENV];
    let reference = untag(var).as_str().expect("HANDOVER_LOG_KEY is set for every function");
    assert!(
        reference.starts_with("{{resolve:secretsmanager:${LogRefKey}"),
        "resolved from the stack's generated secret: {reference}"
    );
    let secret = &t["Resources"]["LogRefKey"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    let length = secret["Properties"]["GenerateSecretString"]["PasswordLength"]
        .as_u64()
        .expect("a generated value");
    assert!(length >= 16, "the code takes a key of 16 bytes or more");
    // Under the stack's own prefix: two stacks never share it, and `session show` can read it.
    for stack in ["handover", "handover-staging"] {
        let name = resolve(&secret["Properties"]["Name"], stack);
        assert_eq!(name, format!("{stack}/log-ref-key"));
    }
}
