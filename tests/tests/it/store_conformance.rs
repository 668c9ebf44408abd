//! The store conformance suite: every case runs against the in-memory store and against
//! DynamoStore on the emulator, so the simulator's store cannot drift from the one that runs.
//! Each case states a DynamoDB behaviour the engine relies on.

use chrono::{DateTime, Duration, TimeDelta, Utc};
use handover::config::{BotConfig, Document};
use handover::domain::{Actor, BotEvent, Effect, Message, Session, TranscriptEntry};
use handover::store::{
    Commit, ConversationLink, Due, EarlyEvent, EarlyKind, IntentCheck, MemoryStore, OutboxItem, OutboxStatus, Requeue,
    SeenMarker, SessionKey, StartIntent, StartLeftover, Store, StoreError, StoredAnswer, StoredAvailability,
};
use handover_tests::{TestEnv, t0};

const BOT: &str = "acme";

fn key(session: &str) -> SessionKey {
    SessionKey::new(BOT, session)
}

fn session(id: &str) -> Session {
    Session::new(BOT, id, t0())
}

fn entry(seq: u64, text: &str) -> TranscriptEntry {
    TranscriptEntry {
        seq,
        actor: Actor::User,
        timestamp: t0(),
        message: Message::text(text),
        agent: None,
        event_id: None,
    }
}

fn outbox_item(k: &SessionKey, seq: u64, due_at: DateTime<Utc>) -> OutboxItem {
    OutboxItem {
        key: k.clone(),
        seq,
        id: format!("d-{seq}"),
        effect: Effect::Bot {
            handover_id: "h-1".into(),
            event: BotEvent::AgentMessage {
                agent: None,
                message: Message::text("hello"),
            },
            context: Default::default(),
        },
        attempts: 0,
        status: OutboxStatus::Pending,
        due_at,
        last_error: None,
        committed_at: Some(due_at),
    }
}

fn commit<'a>(s: &'a Session, expected: Option<u64>) -> Commit<'a> {
    Commit {
        session: s,
        expected_version: expected,
        entries: &[],
        outbox: &[],
        seen: None,
        links: &[],
        expires_at: t0() + Duration::days(30),
        intent: None,
    }
}

fn intent(handover: &str, conversation: Option<&str>) -> StartIntent {
    StartIntent {
        handover_id: handover.into(),
        provider: "desk".into(),
        try_id: format!("try-{handover}"),
        conversation_id: conversation.map(str::to_owned),
        through_seq: 1,
        started_at: t0(),
        due_at: t0() + Duration::seconds(80),
        cancelled: false,
        unresolved: false,
    }
}

fn link(conversation: &str, handover: &str) -> (String, String, String) {
    ("desk".into(), conversation.into(), handover.into())
}

/// A session is created once; each later commit names the version it read.
async fn versions_guard_every_commit(store: &impl Store) {
    let s = session("s1");
    assert_eq!(store.commit(commit(&s, None)).await, Ok(1));
    assert_eq!(
        store.commit(commit(&s, None)).await,
        Err(StoreError::Conflict),
        "created twice"
    );
    assert_eq!(
        store.commit(commit(&s, Some(7))).await,
        Err(StoreError::Conflict),
        "stale"
    );
    assert_eq!(store.commit(commit(&s, Some(1))).await, Ok(2));
    let loaded = store.load_session(&key("s1")).await.unwrap().unwrap();
    assert_eq!((loaded.value, loaded.version), (s, 2));
    assert_eq!(store.load_session(&key("nobody")).await.unwrap(), None);
}

/// A repeated event is refused whole: nothing of the second commit is written, and the first
/// answer is kept for the repeat.
async fn an_event_is_applied_once_and_a_refused_commit_writes_nothing(store: &impl Store) {
    let s = session("s1");
    let marker = SeenMarker {
        scope: "bot:acme".into(),
        event_id: "e-1".into(),
        answer: StoredAnswer {
            status: 202,
            body: serde_json::json!({"accepted": true}),
        },
    };
    let first = [entry(1, "one")];
    let mut c = commit(&s, None);
    c.entries = &first;
    c.seen = Some(&marker);
    assert_eq!(store.commit(c).await, Ok(1));
    let second = [entry(2, "two")];
    let out = [outbox_item(&key("s1"), 1, t0())];
    let mut c = commit(&s, Some(1));
    c.entries = &second;
    c.outbox = &out;
    c.seen = Some(&marker);
    assert_eq!(store.commit(c).await, Err(StoreError::Duplicate));
    assert_eq!(store.load_session(&key("s1")).await.unwrap().unwrap().version, 1);
    assert_eq!(store.transcript(&key("s1"), None).await.unwrap(), first);
    assert!(store.outbox(&key("s1")).await.unwrap().is_empty());
    assert_eq!(
        store.seen(&key("s1"), "bot:acme", "e-1").await.unwrap(),
        Some(marker.answer.clone())
    );
    assert_eq!(store.seen(&key("s1"), "bot:acme", "e-2").await.unwrap(), None);
}

/// More than DynamoDB's 100 items in one transaction is refused before anything is sent.
async fn a_commit_past_the_transaction_limit_is_refused(store: &impl Store) {
    let s = session("s1");
    let entries: Vec<_> = (1..=100).map(|i| entry(i, "x")).collect();
    let mut c = commit(&s, None);
    c.entries = &entries;
    assert_eq!(store.commit(c).await, Err(StoreError::TooLarge(101)));
    assert_eq!(store.load_session(&key("s1")).await.unwrap(), None);
}

/// The transcript reads in order, up to a sequence number when asked.
async fn the_transcript_reads_in_order_up_to_a_number(store: &impl Store) {
    let s = session("s1");
    let entries: Vec<_> = (1..=12).map(|i| entry(i, &format!("turn {i}"))).collect();
    let mut c = commit(&s, None);
    c.entries = &entries;
    store.commit(c).await.unwrap();
    assert_eq!(store.transcript(&key("s1"), None).await.unwrap(), entries);
    assert_eq!(store.transcript(&key("s1"), Some(10)).await.unwrap(), entries[..10]);
    assert!(store.transcript(&key("other"), None).await.unwrap().is_empty());
}

/// A start intent with its pending link; the commit that records the handover removes the
/// intent and makes the link final, in one transaction.
async fn a_commit_consumes_its_start_intent_and_makes_the_links_final(store: &impl Store) {
    let k = key("s1");
    store
        .put_start_intent(
            &k,
            &intent("h-1", Some("c-1")),
            &[link("c-1", "h-1")],
            t0() + Duration::days(1),
        )
        .await
        .unwrap();
    let pending = store.find_conversation(BOT, "desk", "c-1").await.unwrap().unwrap();
    assert_eq!(
        pending,
        ConversationLink {
            key: k.clone(),
            handover_id: "h-1".into(),
            pending: true
        }
    );
    store
        .record_start_answer(&k, &intent("h-1", None), "c-1")
        .await
        .unwrap();
    assert_eq!(
        store.start_intents(&k).await.unwrap()[0].conversation_id.as_deref(),
        Some("c-1")
    );
    let s = session("s1");
    let links = [link("c-1", "h-1")];
    let mut c = commit(&s, None);
    c.links = &links;
    c.intent = Some(("desk", "h-1", IntentCheck::Consume));
    assert_eq!(store.commit(c).await, Ok(1));
    assert!(store.start_intents(&k).await.unwrap().is_empty());
    assert!(
        !store
            .find_conversation(BOT, "desk", "c-1")
            .await
            .unwrap()
            .unwrap()
            .pending
    );
}

/// A cancel seen during the start refuses the plain commit (nothing written) and allows the
/// commit that knows of the cancel; a commit whose intent is gone is refused as such.
async fn a_cancelled_or_finished_start_refuses_its_commit(store: &impl Store) {
    let k = key("s1");
    store
        .put_start_intent(&k, &intent("h-1", None), &[], t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(store.cancel_start(&k).await.unwrap(), Some("h-1".into()));
    assert!(store.start_intents(&k).await.unwrap()[0].cancelled);
    let s = session("s1");
    let mut c = commit(&s, None);
    c.intent = Some(("desk", "h-1", IntentCheck::Consume));
    assert_eq!(store.commit(c.clone()).await, Err(StoreError::StartCancelled));
    assert_eq!(store.load_session(&k).await.unwrap(), None, "nothing written");
    c.intent = Some(("desk", "h-1", IntentCheck::ConsumeCancelled));
    assert_eq!(store.commit(c.clone()).await, Ok(1));
    let mut again = commit(&s, Some(1));
    again.intent = Some(("desk", "h-1", IntentCheck::Consume));
    assert_eq!(store.commit(again).await, Err(StoreError::StartGone));
    assert_eq!(
        store.cancel_start(&key("idle")).await.unwrap(),
        None,
        "no start in flight"
    );
    // Another try of the cancelled handover (a request retried after a failure, at a provider
    // whose conversation id is known before the call) stays cancelled: its commit is refused
    // as such.
    let k2 = key("s2");
    store
        .put_start_intent(&k2, &intent("h-5", Some("c-5")), &[], t0() + Duration::days(1))
        .await
        .unwrap();
    store.cancel_start(&k2).await.unwrap();
    store
        .put_start_intent(&k2, &intent("h-5", Some("c-5")), &[], t0() + Duration::days(1))
        .await
        .unwrap();
    assert!(
        store.start_intents(&k2).await.unwrap()[0].cancelled,
        "the cancel survives the retry"
    );
    let s2 = session("s2");
    let mut retried = commit(&s2, None);
    retried.intent = Some(("desk", "h-5", IntentCheck::Consume));
    assert_eq!(store.commit(retried).await, Err(StoreError::StartCancelled));
    // A new handover's try replaces the intent whole: the earlier cancel does not stick to it.
    store
        .put_start_intent(&k, &intent("h-2", None), &[], t0() + Duration::days(1))
        .await
        .unwrap();
    assert!(!store.start_intents(&k).await.unwrap()[0].cancelled);
}

/// Clearing a start that did not commit removes its intent and its own pending links, never a
/// link a commit made final or another start's.
async fn clearing_a_start_removes_only_its_own_pending_links(store: &impl Store) {
    let k = key("s1");
    let s = session("s1");
    let final_link = [link("c-final", "h-0")];
    let mut c = commit(&s, None);
    c.links = &final_link;
    store.commit(c).await.unwrap();
    store
        .put_start_intent(
            &k,
            &intent("h-1", Some("c-1")),
            &[link("c-1", "h-1")],
            t0() + Duration::days(1),
        )
        .await
        .unwrap();
    // Another start's intent is not ours to clear, nor another try's of the same handover (a
    // copy of the request sent at the same time).
    store
        .clear_start(&k, &intent("h-other", Some("c-1")), StartLeftover::Nothing)
        .await
        .unwrap();
    let other_copy = StartIntent {
        try_id: "try-of-the-other-copy".into(),
        ..intent("h-1", Some("c-1"))
    };
    store
        .clear_start(&k, &other_copy, StartLeftover::Nothing)
        .await
        .unwrap();
    store
        .clear_start(&k, &other_copy, StartLeftover::Unresolved)
        .await
        .unwrap();
    let kept = store.start_intents(&k).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(!kept[0].unresolved);
    assert!(store.find_conversation(BOT, "desk", "c-1").await.unwrap().is_some());
    store
        .clear_start(&k, &intent("h-1", Some("c-1")), StartLeftover::Nothing)
        .await
        .unwrap();
    assert!(store.start_intents(&k).await.unwrap().is_empty());
    assert_eq!(store.find_conversation(BOT, "desk", "c-1").await.unwrap(), None);
    assert!(store.find_conversation(BOT, "desk", "c-final").await.unwrap().is_some());
    // A cancelled start's intent stays when asked to (a retry inherits the cancel); its
    // pending links go all the same.
    store
        .put_start_intent(
            &k,
            &intent("h-2", Some("c-2")),
            &[link("c-2", "h-2")],
            t0() + Duration::days(1),
        )
        .await
        .unwrap();
    store.cancel_start(&k).await.unwrap();
    store
        .clear_start(&k, &intent("h-2", Some("c-2")), StartLeftover::IfCancelled)
        .await
        .unwrap();
    assert_eq!(
        store.start_intents(&k).await.unwrap().len(),
        1,
        "kept: it carries a cancel"
    );
    assert_eq!(store.find_conversation(BOT, "desk", "c-2").await.unwrap(), None);
    store
        .clear_start(&k, &intent("h-2", Some("c-2")), StartLeftover::Nothing)
        .await
        .unwrap();
    assert!(store.start_intents(&k).await.unwrap().is_empty());
}

/// Where only the provider's answer names the conversation, one copy of a request puts the
/// intent: a second copy of the same handover is refused, another handover takes the slot.
async fn an_intent_named_only_by_the_answer_is_put_once_per_handover(store: &impl Store) {
    let k = key("s1");
    let until = t0() + Duration::days(1);
    store
        .put_start_intent(&k, &intent("h-1", None), &[], until)
        .await
        .unwrap();
    assert!(matches!(
        store.put_start_intent(&k, &intent("h-1", None), &[], until).await,
        Err(StoreError::Duplicate)
    ));
    // With the id known before the call, a retry puts it again (the create is idempotent).
    store
        .put_start_intent(&k, &intent("h-2", Some("c-2")), &[], until)
        .await
        .unwrap();
    store
        .put_start_intent(&k, &intent("h-2", Some("c-2")), &[], until)
        .await
        .unwrap();
    store
        .put_start_intent(&k, &intent("h-3", None), &[], until)
        .await
        .unwrap();
    let kept = store.start_intents(&k).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].handover_id, "h-3");
}

/// An unresolved start's intent stays, marked, without its pending links: the record that its
/// create may have happened. A cancel does not take it for a start in flight.
async fn an_unresolved_start_is_kept_marked_and_no_cancel_takes_it(store: &impl Store) {
    let k = key("s1");
    store
        .put_start_intent(
            &k,
            &intent("h-1", None),
            &[link("h-1", "h-1")],
            t0() + Duration::days(1),
        )
        .await
        .unwrap();
    store
        .clear_start(&k, &intent("h-other", None), StartLeftover::Unresolved)
        .await
        .unwrap();
    assert!(
        !store.start_intents(&k).await.unwrap()[0].unresolved,
        "another start's mark does not touch it"
    );
    store
        .clear_start(&k, &intent("h-1", None), StartLeftover::Unresolved)
        .await
        .unwrap();
    let kept = store.start_intents(&k).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].unresolved && !kept[0].cancelled, "{kept:?}");
    assert_eq!(store.find_conversation(BOT, "desk", "h-1").await.unwrap(), None);
    assert_eq!(store.cancel_start(&k).await.unwrap(), None, "no start in flight");
    assert!(!store.start_intents(&k).await.unwrap()[0].cancelled);
    let due = store
        .due(handover::store::shard_of(&k), t0() + Duration::minutes(2), 100)
        .await
        .unwrap()
        .due;
    assert_eq!(
        due,
        vec![Due::Start(k.clone())],
        "in the due index: the evaluator removes it after its due time"
    );
    store
        .clear_start(&k, &intent("h-1", None), StartLeftover::Nothing)
        .await
        .unwrap();
    assert!(store.start_intents(&k).await.unwrap().is_empty());
}

/// Events held for a start in flight read back in sort-key order, and a repeat replaces.
async fn held_events_read_back_in_key_order(store: &impl Store) {
    let k = key("s1");
    let held = |event_id: &str, kind| EarlyEvent {
        provider: "desk".into(),
        event_id: event_id.into(),
        handover_id: "h-1".into(),
        kind,
        agent: None,
        message: None,
        due_at: t0() + Duration::minutes(2),
    };
    let until = t0() + Duration::hours(1);
    store
        .hold_early(&k, &held("e-2", EarlyKind::Message), until)
        .await
        .unwrap();
    store
        .hold_early(&k, &held("e-1", EarlyKind::Joined), until)
        .await
        .unwrap();
    store
        .hold_early(&k, &held("e-1", EarlyKind::Joined), until)
        .await
        .unwrap();
    let events = store.early_events(&k).await.unwrap();
    assert_eq!(
        events,
        vec![held("e-1", EarlyKind::Joined), held("e-2", EarlyKind::Message)]
    );
}

/// A held event is in the due index (for the evaluator's start path) from its due time, in its
/// session's shard, and leaves it when dropped; dropping it again changes nothing.
async fn a_held_event_is_due_at_its_time_until_dropped(store: &impl Store) {
    let k = key("held");
    let held = |event_id: &str| EarlyEvent {
        provider: "desk".into(),
        event_id: event_id.into(),
        handover_id: "h-1".into(),
        kind: EarlyKind::Joined,
        agent: None,
        message: None,
        due_at: t0() + Duration::minutes(3),
    };
    let until = t0() + Duration::hours(1);
    store.hold_early(&k, &held("e-1"), until).await.unwrap();
    store.hold_early(&k, &held("e-2"), until).await.unwrap();
    let shard = handover::store::shard_of(&k);
    let due_at = |now| async move { store.due(shard, now, 100).await.unwrap().due };
    assert!(
        due_at(t0() + Duration::minutes(2)).await.is_empty(),
        "not before its time"
    );
    assert_eq!(due_at(t0() + Duration::minutes(4)).await, vec![Due::Start(k.clone())]);
    store.drop_early(&k, "desk", "e-1").await.unwrap();
    assert_eq!(store.early_events(&k).await.unwrap(), vec![held("e-2")]);
    assert_eq!(
        due_at(t0() + Duration::minutes(4)).await,
        vec![Due::Start(k.clone())],
        "the other one is still due"
    );
    store.drop_early(&k, "desk", "e-2").await.unwrap();
    store.drop_early(&k, "desk", "e-2").await.unwrap();
    assert!(store.early_events(&k).await.unwrap().is_empty());
    assert!(
        due_at(t0() + Duration::minutes(4)).await.is_empty(),
        "gone from the index"
    );
}

/// The outbox lease: taken only on the item as read; updates only by its holder; a given-up
/// item leaves the due index and comes back only by a requeue.
async fn the_outbox_lease_is_held_by_one_deliverer(store: &impl Store) {
    let k = key("s1");
    let s = session("s1");
    // A due time with sub-millisecond digits: stored, like DynamoDB, in milliseconds.
    let at = t0() + TimeDelta::microseconds(1_500);
    let items = [outbox_item(&k, 1, at), outbox_item(&k, 2, at)];
    let mut c = commit(&s, None);
    c.outbox = &items;
    store.commit(c).await.unwrap();
    let read = store.outbox(&k).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].due_at, t0() + TimeDelta::milliseconds(1));
    let lease = t0() + Duration::seconds(30);
    assert!(store.claim_outbox(&read[0], lease).await.unwrap());
    assert!(!store.claim_outbox(&read[0], lease).await.unwrap(), "taken by another");
    assert!(
        !store.outbox_retry(&read[0], lease, "boom").await.unwrap(),
        "not the holder"
    );
    let held = OutboxItem {
        due_at: lease,
        ..read[0].clone()
    };
    let next = t0() + Duration::seconds(90);
    assert!(store.outbox_retry(&held, next, "503").await.unwrap());
    let after = store.outbox(&k).await.unwrap();
    assert_eq!((after[0].attempts, after[0].due_at), (1, next));
    assert_eq!(after[0].last_error.as_deref(), Some("503"));
    assert!(store.outbox_gave_up(&after[0], "gone").await.unwrap());
    let gave = store.outbox(&k).await.unwrap();
    assert_eq!(gave[0].status, OutboxStatus::GaveUp);
    assert_eq!(gave[0].attempts, 2);
    assert_eq!(gave[0].due_at, DateTime::<Utc>::default(), "out of the due index");
    let later = t0() + Duration::hours(2);
    let shard = |due: &[Due]| due.contains(&Due::Outbox(k.clone()));
    let mut due = Vec::new();
    for shard_no in 0..store.due_shards_to_read() {
        due.extend(store.due(shard_no, later, 100).await.unwrap().due);
    }
    assert!(shard(&due), "item 2 is still due");
    store.outbox_delivered(&read[1]).await.unwrap();
    let mut due = Vec::new();
    for shard_no in 0..store.due_shards_to_read() {
        due.extend(store.due(shard_no, later, 100).await.unwrap().due);
    }
    assert!(!shard(&due), "a given-up item is not due");
    assert_eq!(store.outbox_requeue(&k, 1, later).await.unwrap(), Requeue::Requeued);
    assert_eq!(
        store.outbox_requeue(&k, 1, later).await.unwrap(),
        Requeue::AlreadyPending
    );
    assert_eq!(store.outbox_requeue(&k, 9, later).await.unwrap(), Requeue::Missing);
    let back = store.outbox(&k).await.unwrap();
    assert_eq!(
        (back[0].status, back[0].attempts, back[0].due_at),
        (OutboxStatus::Pending, 0, later)
    );
}

/// The due index holds sessions with a timer, pending outbox items and start intents, each in
/// its session's shard, only once they are due.
async fn the_due_index_lists_what_is_due_in_its_shard(store: &impl Store) {
    let mut timed = session("timer");
    timed.timers.no_agent_at = Some(t0() + Duration::minutes(10));
    store.commit(commit(&timed, None)).await.unwrap();
    store.commit(commit(&session("idle"), None)).await.unwrap();
    store
        .put_outbox(
            &outbox_item(&key("outbox"), 1, t0() + Duration::minutes(5)),
            t0() + Duration::days(1),
        )
        .await
        .unwrap();
    store
        .put_start_intent(&key("start"), &intent("h-9", None), &[], t0() + Duration::days(1))
        .await
        .unwrap();
    let all_due = |now| async move {
        let mut found = Vec::new();
        for shard in 0..store.due_shards_to_read() {
            for d in store.due(shard, now, 100).await.unwrap().due {
                let k = match &d {
                    Due::Timer(k) | Due::Outbox(k) | Due::Start(k) => k.clone(),
                };
                assert_eq!(handover::store::shard_of(&k), shard, "{d:?} in its own shard");
                found.push(d);
            }
        }
        found.sort();
        found
    };
    assert!(all_due(t0()).await.is_empty());
    assert_eq!(
        all_due(t0() + Duration::minutes(2)).await,
        vec![Due::Start(key("start"))],
        "the intent is due 80 s after it was written"
    );
    let mut everything = vec![
        Due::Timer(key("timer")),
        Due::Outbox(key("outbox")),
        Due::Start(key("start")),
    ];
    everything.sort();
    assert_eq!(all_due(t0() + Duration::minutes(10)).await, everything);
}

/// Erasing a session removes its partition, its outbox lanes and the links it names, and
/// counts them as DynamoStore deletes them.
async fn erasing_a_session_removes_everything_it_names(store: &impl Store) {
    let k = key("s1");
    let s = session("s1");
    let entries = [entry(1, "one"), entry(2, "two")];
    let out = [outbox_item(&k, 1, t0())];
    let links = [link("c-1", "h-1")];
    let mut c = commit(&s, None);
    c.entries = &entries;
    c.outbox = &out;
    c.links = &links;
    store.commit(c).await.unwrap();
    let abandoned = SessionKey::new(BOT, "s1#abandoned");
    store
        .put_outbox(&outbox_item(&abandoned, 1, t0()), t0() + Duration::days(1))
        .await
        .unwrap();
    // state + 2 entries + back-reference + link + 2 outbox items
    assert_eq!(store.erase_session(&k).await.unwrap(), 7);
    assert_eq!(store.load_session(&k).await.unwrap(), None);
    assert!(store.transcript(&k, None).await.unwrap().is_empty());
    assert!(store.outbox(&k).await.unwrap().is_empty());
    assert!(store.outbox(&abandoned).await.unwrap().is_empty());
    assert_eq!(store.find_conversation(BOT, "desk", "c-1").await.unwrap(), None);
    assert_eq!(
        store.erase_session(&k).await.unwrap(),
        1,
        "only the state key, already gone"
    );
}

/// The circuit breaker opens at its threshold, never moves its opening earlier, and closes on
/// a success; unknown providers are healthy.
async fn the_breaker_opens_at_its_threshold_and_closes_on_success(store: &impl Store) {
    let open_until = t0() + Duration::seconds(60);
    assert_eq!(
        store.record_failure(BOT, "desk", 2, open_until).await.unwrap().failures,
        1
    );
    let h = store.record_failure(BOT, "desk", 2, open_until).await.unwrap();
    assert_eq!((h.failures, h.open_until), (2, Some(open_until)));
    let h = store.record_failure(BOT, "desk", 2, t0()).await.unwrap();
    assert_eq!(h.open_until, Some(open_until), "not moved earlier");
    let (health, availability) = store.intake_state(BOT, &["desk".into(), "other".into()]).await.unwrap();
    assert!(health[0].is_open(t0()));
    assert_eq!((health[1].failures, health[1].open_until), (0, None));
    assert_eq!(availability, None);
    store.record_success(BOT, "desk").await.unwrap();
    store.record_success(BOT, "never-failed").await.unwrap();
    let (health, _) = store.intake_state(BOT, &["desk".into()]).await.unwrap();
    assert_eq!((health[0].failures, health[0].open_until), (0, None));
    let stored = StoredAvailability::default();
    store.put_availability(&[(BOT.into(), stored.clone())]).await.unwrap();
    assert_eq!(store.intake_state(BOT, &[]).await.unwrap().1, Some(stored));
}

/// Bots are versioned from 1, listed by id, and read in batches with their availability.
async fn bots_are_versioned_listed_and_read_in_batches(store: &impl Store) {
    // The demo bot's URLs are local ones, as in `make run`.
    handover::url_policy::allow_local_urls();
    let text = include_str!("../../../examples/demo-bot.yaml");
    let demo = BotConfig::parse(text).unwrap();
    let mut other = demo.clone();
    other.bot_id = "another".into();
    assert_eq!(store.put_bot(&demo).await.unwrap(), 1);
    assert_eq!(store.put_bot(&demo).await.unwrap(), 2);
    assert_eq!(store.put_bot(&other).await.unwrap(), 1);
    assert_eq!(store.get_bot("demo").await.unwrap().unwrap().version, 2);
    assert_eq!(store.get_bot("nobody").await.unwrap(), None);
    assert_eq!(
        store.list_bots().await.unwrap(),
        vec!["another".to_owned(), "demo".to_owned()]
    );
    store
        .put_availability(&[("demo".into(), StoredAvailability::default())])
        .await
        .unwrap();
    let both = store
        .get_bots(&["demo".into(), "nobody".into(), "another".into()])
        .await
        .unwrap();
    let ids: Vec<_> = both.iter().map(|(c, a)| (c.bot_id.as_str(), a.is_some())).collect();
    assert_eq!(ids, vec![("demo", true), ("another", false)]);
}

/// The typical time to join is the mean over the day and the day before.
async fn the_typical_wait_is_the_mean_of_two_days(store: &impl Store) {
    let today = t0();
    assert_eq!(store.typical_wait(BOT, "general", today).await.unwrap(), None);
    store.record_wait(BOT, "general", today, 60).await.unwrap();
    store
        .record_wait(BOT, "general", today - Duration::days(1), 120)
        .await
        .unwrap();
    store
        .record_wait(BOT, "general", today - Duration::days(2), 6000)
        .await
        .unwrap();
    store.record_wait(BOT, "dutch", today, 1).await.unwrap();
    assert_eq!(store.typical_wait(BOT, "general", today).await.unwrap(), Some(90));
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::MemoryStore::new()).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test]
                async fn $case() {
                    let env = super::TestEnv::new().await;
                    super::$case(env.dynamo_store()).await;
                }
            )*
        }
    };
}

conformance!(
    versions_guard_every_commit,
    an_event_is_applied_once_and_a_refused_commit_writes_nothing,
    a_commit_past_the_transaction_limit_is_refused,
    the_transcript_reads_in_order_up_to_a_number,
    a_commit_consumes_its_start_intent_and_makes_the_links_final,
    a_cancelled_or_finished_start_refuses_its_commit,
    clearing_a_start_removes_only_its_own_pending_links,
    an_unresolved_start_is_kept_marked_and_no_cancel_takes_it,
    an_intent_named_only_by_the_answer_is_put_once_per_handover,
    held_events_read_back_in_key_order,
    a_held_event_is_due_at_its_time_until_dropped,
    the_outbox_lease_is_held_by_one_deliverer,
    the_due_index_lists_what_is_due_in_its_shard,
    erasing_a_session_removes_everything_it_names,
    the_breaker_opens_at_its_threshold_and_closes_on_success,
    bots_are_versioned_listed_and_read_in_batches,
    the_typical_wait_is_the_mean_of_two_days,
);
