//! The short fuzzing pass of `make test`: the same properties as the libFuzzer targets of
//! `make fuzz` (fuzz/src/checks.rs), run on
//! - every committed seed and regression case (fuzz/seeds/<target>/), and
//! - structure-aware random inputs: the seeds parsed as JSON and mutated field by field
//!   (values replaced by arbitrary JSON, fields removed, strings made huge, headers dropped),
//!   plus raw truncations, so the parsers see near-valid input and not only noise;
//! - and through the real handlers on the emulator: every refusal is a 4xx JSON error and
//!   leaves the table exactly as it was, and nothing answers 5xx.

#[path = "../../../fuzz/src/checks.rs"]
mod checks;

use std::path::PathBuf;

use handover_tests::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{Value, json};
use wiremock::matchers::any as any_request;
use wiremock::{Mock, MockServer, ResponseTemplate};

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 5] = [
    ("native_event", checks::native_event),
    ("chatlayer_webhook", checks::chatlayer_webhook),
    ("provider_callback", checks::provider_callback),
    ("signatures", checks::signatures),
    ("bot_config", checks::bot_config),
];

fn seeds_dir(target: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds")).join(target)
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_committed_seed_and_regression_case_passes_its_checks() {
    for (target, check) in TARGETS {
        let seeds = seeds(target);
        assert!(
            seeds.len() >= 3,
            "{target}: too few seeds in {}",
            seeds_dir(target).display()
        );
        for (name, data) in seeds {
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                std::panic::resume_unwind(Box::new(format!("{target}/{name}: {panic:?}")));
            }
        }
    }
}

// ---- structure-aware mutation ------------------------------------------------------------

/// Strings the parsers treat specially, mixed into random ones.
const WORDS: &[&str] = &[
    "",
    "#",
    "user",
    "bot",
    "agent",
    "system",
    "message",
    "messages",
    "offload",
    "handover.request",
    "handover.cancel",
    "agent.joined",
    "agent.message",
    "agent.typing",
    "conversation.closed",
    "text",
    "postback",
    "image",
    "file",
    "location",
    "explicit_request",
    "not_understood",
    "v1=",
    "sha256=",
    "2026-11-25T09:00:00Z",
    "not a date",
    "\u{0}",
    "é\u{202e}",
    "Bearer ",
    "null",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof!["[a-zA-Z]{1,12}", prop::sample::select(WORDS).prop_map(str::to_owned)],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, Value),
    Remove(Index),
    Huge(Index, usize),
    AddField(Index, String, Value),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), arb_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
        2 => any::<Index>().prop_map(Edit::Remove),
        1 => (any::<Index>(), 1usize..40_000).prop_map(|(i, n)| Edit::Huge(i, n)),
        1 => (any::<Index>(), prop::sample::select(WORDS).prop_map(str::to_owned), arb_json())
            .prop_map(|(i, k, v)| Edit::AddField(i, k, v)),
    ]
}

/// JSON pointers of every node.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply(doc: &mut Value, edit: &Edit) {
    let mut all = Vec::new();
    pointers(doc, String::new(), &mut all);
    let pick = |i: &Index| all[i.index(all.len())].clone();
    match edit {
        Edit::Replace(i, v) => {
            if let Some(node) = doc.pointer_mut(&pick(i)) {
                *node = v.clone();
            }
        }
        Edit::Remove(i) => {
            let p = pick(i);
            if let Some((parent, last)) = p.rsplit_once('/') {
                match doc.pointer_mut(parent) {
                    Some(Value::Object(m)) => {
                        m.remove(&last.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(n) = last.parse::<usize>()
                            && n < a.len()
                        {
                            a.remove(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        Edit::Huge(i, n) => {
            if let Some(node) = doc.pointer_mut(&pick(i)) {
                *node = Value::from("x".repeat(*n));
            }
        }
        Edit::AddField(i, k, v) => {
            if let Some(Value::Object(m)) = doc.pointer_mut(&pick(i)) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A seed, mutated: JSON edits when it is JSON, else (and sometimes anyway) a raw cut.
fn mutate_json(seed: &[u8], edits: &[Edit], cut: Option<Index>) -> Vec<u8> {
    let mut out = match serde_json::from_slice::<Value>(seed) {
        Ok(mut doc) => {
            for e in edits {
                apply(&mut doc, e);
            }
            serde_json::to_vec(&doc).unwrap()
        }
        Err(_) => seed.to_vec(),
    };
    if let Some(c) = cut {
        out.truncate(c.index(out.len() + 1));
    }
    out
}

/// A provider callback seed (head + blank line + body): the body mutated as JSON, and maybe
/// one header or query line dropped.
fn mutate_callback(seed: &[u8], edits: &[Edit], cut: Option<Index>, drop_line: Option<Index>) -> Vec<u8> {
    let split = seed.windows(2).position(|w| w == b"\n\n").map_or(seed.len(), |i| i + 2);
    let (head, body) = seed.split_at(split);
    let mut lines: Vec<&[u8]> = head.split(|b| *b == b'\n').collect();
    if let Some(d) = drop_line
        && lines.len() > 3
    {
        lines.remove(2 + d.index(lines.len() - 3));
    }
    let mut out = lines.join(&b'\n');
    out.extend(mutate_json(body, edits, cut));
    out
}

fn arb_case(n_seeds: usize) -> impl Strategy<Value = (usize, Vec<Edit>, Option<Index>, Option<Index>)> {
    (
        0..n_seeds,
        prop::collection::vec(arb_edit(), 0..4),
        prop::option::weighted(0.1, any::<Index>()),
        prop::option::weighted(0.2, any::<Index>()),
    )
}

/// A runner with a fixed seed: the same inputs on every run, so CI never flakes; `make fuzz`
/// is where new inputs are explored.
fn runner(config: Config) -> TestRunner {
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    TestRunner::new_with_rng(config, rng)
}

/// Random inputs per target for the pure checks; the seeds carry the structure.
const PURE_CASES: u32 = 600;

fn run_pure(target: &str, check: Check) {
    let seeds = seeds(target);
    let mut runner = runner(Config {
        cases: PURE_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&arb_case(seeds.len()), |(s, edits, cut, drop)| {
            let data = match target {
                "provider_callback" => mutate_callback(&seeds[s].1, &edits, cut, drop),
                "signatures" | "bot_config" if serde_json::from_slice::<Value>(&seeds[s].1).is_err() => {
                    // Not JSON: byte-level edits driven by the same random choices.
                    let mut d = seeds[s].1.clone();
                    for e in &edits {
                        if let Edit::Replace(i, v) = e
                            && !d.is_empty()
                        {
                            let at = i.index(d.len());
                            d.splice(at..at, v.to_string().into_bytes());
                        }
                    }
                    if let Some(c) = cut {
                        d.truncate(c.index(d.len() + 1));
                    }
                    d
                }
                _ => mutate_json(&seeds[s].1, &edits, cut),
            };
            check(&data);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
}

#[test]
fn random_native_events_keep_the_properties() {
    run_pure("native_event", checks::native_event);
}

#[test]
fn random_chatlayer_webhooks_keep_the_properties() {
    run_pure("chatlayer_webhook", checks::chatlayer_webhook);
}

#[test]
fn random_provider_callbacks_keep_the_properties() {
    run_pure("provider_callback", checks::provider_callback);
}

#[test]
fn random_signature_headers_keep_the_properties() {
    run_pure("signatures", checks::signatures);
}

#[test]
fn random_bot_configurations_keep_the_properties() {
    run_pure("bot_config", checks::bot_config);
}

// ---- through the handlers, on the emulator -------------------------------------------------

/// Random inputs per route through the real handlers (each costs emulator round trips).
const HANDLER_CASES: u32 = 40;

struct Stack {
    env: TestEnv,
    _mocks: MockServer,
}

/// Two bots on the emulator: `fuzz` (native platform, every provider kind, as in the fuzz
/// targets) and `cl` (Chatlayer), every outbound call answered 200 by one mock server.
async fn stack() -> Stack {
    let env = TestEnv::new().await;
    let mocks = MockServer::start().await;
    Mock::given(any_request())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&mocks)
        .await;
    let mut yaml = checks::BOT_YAML.to_owned();
    for id in [
        "desk",
        "zd",
        "intercom",
        "genesys",
        "helpscout",
        "engage",
        "sc",
        "interact",
    ] {
        let secret: Value = serde_json::from_str(checks::provider_secret(id)).unwrap();
        let name = env.secret(id, &secret).await;
        yaml = yaml.replace(&format!("handover/fuzz/{id}\n"), &format!("{name}\n"));
    }
    let platform = env.secret("platform", &json!({"signingSecret": "bot-secret"})).await;
    yaml = yaml
        .replace("handover/fuzz/platform", &platform)
        .replace("https://bot.example.com", &mocks.uri())
        .replace("https://desk.example.com", &mocks.uri());
    env.put_bot(&yaml).await;
    let cl = env
        .secret(
            "chatlayer",
            &json!({"verifyToken": "verify-me", "apiToken": "cl-api-token"}),
        )
        .await;
    let desk = env.secret("desk-cl", &json!({"signingSecret": "desk-secret"})).await;
    env.put_bot(&format!(
        "botId: cl\nplatform:\n  kind: chatlayer\n  secretRef: {cl}\n  apiBaseUrl: '{uri}'\nproviders:\n  - {{ id: desk, kind: webhook, url: '{uri}/desk', secretRef: {desk} }}\nrouting:\n  - {{ provider: desk, queue: general }}\n",
        uri = mocks.uri()
    ))
    .await;
    Stack { env, _mocks: mocks }
}

/// Sends one request; checks no 5xx, and for a refusal: a JSON error with a code and an
/// unchanged table. Returns the status.
async fn check_handler(env: &TestEnv, what: &str, req: lambda_http::Request, provider: bool) -> u16 {
    let before = env.dump().await;
    let (status, body) = if provider {
        env.call_provider(req).await
    } else {
        env.call_bot(req).await
    };
    assert!(status < 500, "{what}: answered {status} {body}");
    if std::env::var("FUZZ_DEBUG").is_ok() {
        eprintln!("{what}: {status} {body}");
    }
    if status >= 400 {
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{what}: a refusal is a JSON error, got {status} {body}"
        );
        assert_eq!(
            env.dump().await,
            before,
            "{what}: refused with {status} but the table changed"
        );
    }
    status
}

fn statuses_summary(statuses: &[u16]) -> String {
    let mut m = std::collections::BTreeMap::new();
    for s in statuses {
        *m.entry(s).or_insert(0) += 1;
    }
    format!("{m:?}")
}

/// Runs `cases` random cases of a strategy through an async check on one runtime.
fn run_async<S, F>(strategy: S, cases: u32, f: F)
where
    S: Strategy,
    S::Value: Clone + std::fmt::Debug,
    F: Fn(S::Value),
{
    let mut runner = runner(Config {
        cases,
        failure_persistence: None,
        // Every case is a few emulator round trips: no shrinking marathon on failure.
        max_shrink_iters: 16,
        ..Config::default()
    });
    runner
        .run(&strategy, |v| {
            f(v);
            Ok(())
        })
        .unwrap();
}

#[test]
fn random_events_through_the_bot_handlers_refuse_cleanly_and_write_nothing_when_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stack = rt.block_on(stack());
    let env = &stack.env;
    let native = seeds("native_event");
    let chatlayer = seeds("chatlayer_webhook");
    // Each route's statuses on their own: pooled, one route accepting nothing would pass.
    let native_statuses = std::cell::RefCell::new(Vec::new());
    let chatlayer_statuses = std::cell::RefCell::new(Vec::new());
    run_async(
        (arb_case(native.len()), arb_case(chatlayer.len()), any::<bool>()),
        HANDLER_CASES,
        |((n, n_edits, n_cut, _), (c, c_edits, c_cut, _), tamper)| {
            // Native: signed with the bot's secret, so the body reaches the parser; sometimes
            // the signature is made for other bytes and must be refused before parsing.
            let body = mutate_json(&native[n].1, &n_edits, n_cut);
            let mut signed_for = body.clone();
            if tamper {
                signed_for.push(b' ');
            }
            let req = env.request(
                "POST",
                "/v1/bots/fuzz/events",
                &env.signed(b"bot-secret", &signed_for),
                &body,
            );
            let s = rt.block_on(check_handler(env, "native event", req, false));
            if tamper {
                assert_eq!(s, 401, "a signature over other bytes is refused");
            }
            native_statuses.borrow_mut().push(s);
            // Chatlayer: with the verify token, or without it.
            let body = mutate_json(&chatlayer[c].1, &c_edits, c_cut);
            let q = if tamper { "" } else { "?challenge.verifyToken=verify-me" };
            let req = env.request("POST", &format!("/v1/bots/cl/chatlayer{q}"), &[], &body);
            let s = rt.block_on(check_handler(env, "chatlayer webhook", req, false));
            if tamper {
                assert_eq!(s, 401, "a webhook without the verify token is refused");
            }
            chatlayer_statuses.borrow_mut().push(s);
        },
    );
    // Each route must have exercised both sides: some accepted, some refused after parsing,
    // some refused before (authentication).
    for (route, statuses) in [("native", native_statuses), ("chatlayer", chatlayer_statuses)] {
        let statuses = statuses.into_inner();
        for wanted in [200, 400, 401] {
            assert!(
                statuses.contains(&wanted),
                "the {route} route never answered {wanted}: {}",
                statuses_summary(&statuses)
            );
        }
    }
}

/// Re-signs a mutated callback body as its provider would, where the signature covers the body.
fn resign(id: &str, headers: &mut Vec<(String, String)>, body: &[u8], env: &TestEnv) {
    use handover::providers::{genesys, helpscout, intercom, sparkcentral};
    let secret = |field: &str| -> String {
        let v: Value = serde_json::from_str(checks::provider_secret(id)).unwrap();
        v[field].as_str().unwrap().to_owned()
    };
    let mut set = |name: &str, value: String| {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.push((name.to_owned(), value));
    };
    match id {
        "desk" => {
            for (k, v) in env.signed(secret("signingSecret").as_bytes(), body) {
                set(k, v);
            }
        }
        "intercom" => set(
            "x-hub-signature",
            intercom::signature(secret("clientSecret").as_bytes(), body),
        ),
        "genesys" => set(
            "x-hub-signature-256",
            genesys::signature(secret("webhookSecret").as_bytes(), body),
        ),
        "helpscout" => set(
            "x-helpscout-signature",
            helpscout::signature(secret("webhookSecret").as_bytes(), body),
        ),
        "sc" => set(
            "x-sparkcentral-signature",
            sparkcentral::signature(&secret("sharedSecret"), body).unwrap(),
        ),
        // Token schemes (Zendesk, Engage, #Interact): the captured header still authenticates.
        _ => {}
    }
}

#[test]
fn random_callbacks_through_the_provider_handler_refuse_cleanly_and_write_nothing_when_refused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stack = rt.block_on(stack());
    let env = &stack.env;
    let seeds = seeds("provider_callback");
    let statuses = std::cell::RefCell::new(Vec::new());
    run_async(
        (arb_case(seeds.len()), any::<bool>()),
        HANDLER_CASES * 2,
        |((s, edits, cut, drop), resigned)| {
            let data = mutate_callback(&seeds[s].1, &edits, cut, drop);
            let raw = checks::read_callback(&data);
            let id = checks::world().providers[raw.provider].0.clone();
            let mut headers: Vec<(String, String)> = raw
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .filter(|(k, _)| k != "host" && k != "content-type" && k != "content-length")
                .collect();
            if resigned {
                resign(&id, &mut headers, &raw.body, env);
            }
            let query: Vec<String> = raw.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let path = format!(
                "/v1/bots/fuzz/providers/{id}/callback{}{}",
                if query.is_empty() { "" } else { "?" },
                query.join("&")
            );
            headers.push(("host".into(), "api.example.com".into()));
            let event = handover::app::local::apigw_v2_event(&raw.method, &path, &headers, &raw.body);
            let Ok(req) = handover::app::local::to_request(&event) else {
                return; // not expressible as an API Gateway event
            };
            statuses
                .borrow_mut()
                .push(rt.block_on(check_handler(env, &format!("{id} callback"), req, true)));
        },
    );
    let statuses = statuses.into_inner();
    assert!(statuses.contains(&200), "{}", statuses_summary(&statuses));
    assert!(statuses.contains(&401), "{}", statuses_summary(&statuses));
}
