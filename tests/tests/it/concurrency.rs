//! Conflicting writers retry on the version check: nothing is lost, nothing is doubled.

use std::sync::Arc;

use handover::store::SessionKey;
use handover_tests::*;
use wiremock::MockServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_messages_to_one_session_are_all_stored_in_order() {
    let env = Arc::new(TestEnv::new().await);
    let srv = MockServer::start().await;
    let bot = env
        .standard_bot(&format!("{}/bot", srv.uri()), &format!("{}/desk", srv.uri()), "")
        .await;
    let secret = Arc::new(bot.platform_secret);
    let tasks: Vec<_> = (1..=20)
        .map(|i| {
            let env = env.clone();
            let secret = secret.clone();
            tokio::spawn(async move {
                env.send_event(
                    "acme",
                    &secret,
                    &user_message(&format!("e{i}"), "s-hot", &format!("message {i}")),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let key = SessionKey::new("acme", "s-hot");
    let transcript = env.store.transcript(&key, None).await.unwrap();
    let seqs: Vec<u64> = transcript.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "no gaps, no duplicates");
    let mut texts: Vec<String> = transcript.iter().map(|e| e.message.text.clone().unwrap()).collect();
    texts.sort_by_key(|t| t[8..].parse::<u32>().unwrap());
    assert_eq!(
        texts,
        (1..=20).map(|i| format!("message {i}")).collect::<Vec<_>>(),
        "every message kept once"
    );
    let session = env.store.load_session(&key).await.unwrap().unwrap();
    assert_eq!(session.value.seq, 20);
    assert_eq!(session.version, 20, "one committed version per message");
}
