//! `handover stats` on the emulator: a scripted morning of handovers through the real
//! handlers and the evaluator, then the figures read back from the table.

use chrono::{DateTime, Duration, Utc};
use handover::app::evaluator;
use handover::metrics::stats::{self, Period};
use handover_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn at(hms: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-25T{hms}Z"))
        .unwrap()
        .to_utc()
}

fn request(id: &str, session: &str, trigger: &str, queue: Option<&str>) -> Value {
    let mut handover = json!({ "trigger": trigger });
    if let Some(q) = queue {
        handover["queue"] = json!(q);
    }
    json!({"id": id, "type": "handover.request", "sessionId": session, "handover": handover})
}

#[tokio::test]
async fn stats_after_a_scripted_morning_of_handovers() {
    let env = TestEnv::new().await;
    let srv = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&srv)
        .await;
    let timeouts = "timeouts: { noAgentSeconds: 600, stillWaitingEverySeconds: 0, agentIdleSeconds: 3600 }";
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), timeouts)
        .await;
    let mut conversations = std::collections::HashMap::new();
    let mut n = 0;
    let mut step = async |time: &str, session: &str, what: &str| {
        env.clock.set(at(time));
        n += 1;
        let id = format!("e{n}");
        let (status, answer) = match what {
            "cancel" => {
                let body = json!({"id": id, "type": "handover.cancel", "sessionId": session});
                env.send_event("acme", &bot.platform_secret, &body).await
            }
            "agent.joined" | "conversation.closed" => {
                let conv: &String = &conversations[session];
                let body = json!({"id": id, "type": what, "conversationId": conv, "agent": {"id": "a-1"}});
                env.send_callback("acme", "desk", &bot.desk_secret, &body).await
            }
            request_for => {
                let (trigger, queue) = request_for
                    .split_once(' ')
                    .map_or((request_for, None), |(t, q)| (t, Some(q)));
                let answer = env
                    .send_event("acme", &bot.platform_secret, &request(&id, session, trigger, queue))
                    .await;
                assert_eq!(answer.1["outcome"], "opened", "{}", answer.1);
                conversations.insert(session.to_owned(), answer.1["handoverId"].as_str().unwrap().to_owned());
                answer
            }
        };
        assert_eq!(status, 200, "{session} {what}: {answer}");
    };

    // Before the period: an early handover, joined after 30 s, closed by the agent.
    step("07:00:00", "s-6", "explicit_request").await;
    step("07:00:30", "s-6", "agent.joined").await;
    step("07:10:00", "s-6", "conversation.closed").await;
    // In the period (from 08:00).
    step("09:00:00", "s-1", "explicit_request").await;
    step("09:01:00", "s-1", "agent.joined").await; // waited 60 s
    step("09:01:00", "s-2", "explicit_request").await;
    step("09:02:00", "s-3", "menu_request").await;
    step("09:03:00", "s-4", "not_understood billing").await;
    step("09:04:00", "s-2", "agent.joined").await; // waited 180 s, still with the agent
    step("09:04:00", "s-3", "cancel").await; // gave up after 120 s
    step("09:05:00", "s-5", "explicit_request billing").await; // still waiting
    step("09:10:00", "s-1", "conversation.closed").await; // lasted 600 s
    // s-4 has waited 600 s: the evaluator ends it.
    env.clock.set(at("09:13:00"));
    let report = evaluator::run(&env.ctx, env.now()).await;
    assert_eq!(report.timers_fired, 1);

    let period = Period {
        since: at("08:00:00"),
        until: at("09:20:00"),
        queue: None,
    };
    let all = stats::load(env.dynamo_store(), "acme", &period).await.unwrap();
    let figures = serde_json::to_value(&all).unwrap();
    assert_eq!(
        figures,
        json!({
            "botId": "acme",
            "since": "2026-11-25T08:00:00Z",
            "until": "2026-11-25T09:20:00Z",
            "opened": {"total": 5, "by": {"explicit_request": 3, "menu_request": 1, "not_understood": 1}},
            "byProvider": {"desk": 5},
            "byQueue": {"billing": 2, "general": 3},
            "agentJoined": 2,
            "timeToAgent": {"count": 2, "p50": 60, "p90": 180, "mean": 120, "max": 180},
            "abandoned": {"total": 2, "by": {"no_agent_timeout": 1, "user_cancelled": 1}},
            "abandonedAfter": {"count": 2, "p50": 120, "p90": 600, "mean": 360, "max": 600},
            "ended": {"total": 3, "by": {"agent_closed": 1, "no_agent_timeout": 1, "user_cancelled": 1}},
            "duration": {"count": 3, "p50": 600, "p90": 600, "mean": 440, "max": 600},
            "waitingNow": 1,
            "withAgentNow": 1,
            // Every join of the day, s-6's included: 30 + 60 + 180 s over 3 joins.
            "queueDays": [{"queue": "general", "day": "2026-11-25", "joins": 3, "meanWaitSeconds": 90}],
            "notes": [
                "each session keeps only its most recent finished handover: earlier ones of the same session are not counted",
                "requests answered closed or disabled store nothing: see the HandoverClosed and HandoverDisabled metrics",
            ],
        })
    );

    // docs/operations.md shows this very table.
    let doc = std::fs::read_to_string(format!("{}/../docs/operations.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let example = doc
        .split("$ handover stats acme --since 2026-11-25T08:00:00Z   # at 09:20\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/operations.md has the example");
    assert_eq!(example, stats::render(&all));

    let billing = stats::load(
        env.dynamo_store(),
        "acme",
        &Period {
            queue: Some("billing".into()),
            ..period
        },
    )
    .await
    .unwrap();
    let table = stats::render(&billing);
    let figures: Vec<&str> = table.lines().take_while(|l| !l.starts_with("note:")).collect();
    assert_eq!(
        figures,
        [
            "bot acme, queue billing: handovers requested from 2026-11-25 08:00 to 2026-11-25 09:20 UTC",
            "",
            "opened                        2  explicit_request 1, not_understood 1",
            "  by provider                    desk 2",
            "  by queue                       billing 2",
            "agent joined                  0  0% of opened",
            "time to agent                    p50 -, p90 -, mean -, max - (n=0)",
            "abandoned while waiting       1  no_agent_timeout 1",
            "  after waiting                  p50 10m 0s, p90 10m 0s, mean 10m 0s, max 10m 0s (n=1)",
            "ended                         1  no_agent_timeout 1",
            "handover duration                p50 10m 0s, p90 10m 0s, mean 10m 0s, max 10m 0s (n=1)",
            "waiting now                   1",
            "with an agent now             0",
            "",
        ]
    );
}

#[tokio::test]
async fn stats_of_a_bot_without_handovers_are_zero() {
    let env = TestEnv::new().await;
    let period = Period {
        since: t0() - Duration::days(1),
        until: t0(),
        queue: None,
    };
    let s = stats::load(env.dynamo_store(), "nobody", &period).await.unwrap();
    assert_eq!((s.opened.total, s.agent_joined, s.ended.total), (0, 0, 0));
    assert_eq!(s.time_to_agent.p50, None);
    assert!(s.queue_days.is_empty());
}
