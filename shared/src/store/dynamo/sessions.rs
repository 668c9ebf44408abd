//! Sessions: state, transcript, idempotency markers, provider-conversation links, start intents and held events (one partition per session).

use super::*;

#[async_trait]
impl crate::store::SessionStore for DynamoStore {
    async fn load_session(&self, key: &SessionKey) -> StoreResult<Option<Versioned<Session>>> {
        self.get_versioned(session_pk(key), "STATE").await
    }

    async fn commit(&self, c: Commit<'_>) -> StoreResult<u64> {
        let key = SessionKey::new(&c.session.bot_id, &c.session.session_id);
        let new_version = c.expected_version.map_or(1, |v| v + 1);
        let mut items = Vec::new();
        // Index 0: the session, guarded by its version. Index 1: the idempotency marker.
        // Cancellation reasons are read by these positions below.
        let session = self.session_item(c.session, new_version, c.expires_at);
        items.push(match c.expected_version {
            None => put(&self.table, session, Some("attribute_not_exists(pk)"), None),
            Some(v) => put(
                &self.table,
                session,
                Some("version = :v"),
                Some(HashMap::from([(":v".into(), n(v))])),
            ),
        });
        if let Some(seen) = c.seen {
            let expires = (Utc::now() + Duration::days(SEEN_TTL_DAYS)).timestamp();
            let item: Item = HashMap::from([
                ("pk".into(), s(session_pk(&key))),
                ("sk".into(), s(seen_sk(&seen.scope, &seen.event_id))),
                ("status".into(), n(seen.answer.status)),
                ("doc".into(), to_doc(&seen.answer.body)),
                ("expiresAt".into(), n(expires)),
            ]);
            items.push(put(&self.table, item, Some("attribute_not_exists(pk)"), None));
        }
        // Entries and outbox items need no condition of their own: their numbers come from the
        // session, and the session's version condition already makes this commit exclusive. A
        // leftover of an expired session (TTL removes items in any order) is overwritten.
        for e in c.entries {
            let item: Item = HashMap::from([
                ("pk".into(), s(session_pk(&key))),
                ("sk".into(), s(format!("MSG#{:010}", e.seq))),
                ("doc".into(), to_doc(e)),
                ("expiresAt".into(), n(c.expires_at.timestamp())),
            ]);
            items.push(put(&self.table, item, None, None));
        }
        for o in c.outbox {
            items.push(put(&self.table, outbox_item(o, c.expires_at, self.shards), None, None));
        }
        // The start intent this commit records: removed with it, and only if it is still
        // there (the evaluator did not finish it as abandoned) and, unless a cancel was already
        // seen, not cancelled meanwhile. Its position is read from the cancellation reasons.
        let intent_at = c.intent.map(|(provider, handover_id, check)| {
            let condition = match check {
                IntentCheck::Consume => "#h = :h AND attribute_not_exists(#c)",
                IntentCheck::ConsumeCancelled => "#h = :h",
            };
            let mut names = HashMap::from([("#h".to_owned(), "handoverId".to_owned())]);
            if check == IntentCheck::Consume {
                names.insert("#c".into(), "cancelled".into());
            }
            let d = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(session_pk(&key)))
                .key("sk", s(start_sk(provider)))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .expression_attribute_values(":h", s(handover_id))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .expect("table name and key are set");
            items.push(TransactWriteItem::builder().delete(d).build());
            items.len() - 1
        });
        for (provider, conversation, handover) in c.links {
            items.extend(self.link_items(&key, (provider, conversation, handover), c.expires_at, false));
        }
        if items.len() > crate::store::MAX_TRANSACTION_ITEMS {
            return Err(StoreError::TooLarge(items.len()));
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(new_version),
            Err(e) => {
                if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t)) =
                    e.as_service_error()
                {
                    let failed = |i: usize| {
                        t.cancellation_reasons().get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                    };
                    if c.seen.is_some() && failed(1) {
                        return Err(StoreError::Duplicate);
                    }
                    if let Some(i) = intent_at
                        && failed(i)
                    {
                        let old = t.cancellation_reasons().get(i).and_then(|r| r.item());
                        let cancelled = old.is_some_and(|o| o.contains_key("cancelled"));
                        return Err(if cancelled {
                            StoreError::StartCancelled
                        } else {
                            StoreError::StartGone
                        });
                    }
                    if failed(0) {
                        return Err(StoreError::Conflict);
                    }
                    if t.cancellation_reasons().iter().any(|r| r.code() == Some("TransactionConflict")) {
                        return Err(StoreError::Conflict);
                    }
                }
                Err(backend(e))
            }
        }
    }

    async fn seen(&self, key: &SessionKey, scope: &str, event_id: &str) -> StoreResult<Option<StoredAnswer>> {
        let Some(item) = self.get(session_pk(key), &seen_sk(scope, event_id)).await? else {
            return Ok(None);
        };
        let item = &item;
        Ok(Some(StoredAnswer {
            status: u16::try_from(get_n(item, "status")?).unwrap_or(200),
            body: from_doc(item)?,
        }))
    }

    async fn transcript(&self, key: &SessionKey, through_seq: Option<u64>) -> StoreResult<Vec<TranscriptEntry>> {
        let upto = format!("MSG#{:010}", through_seq.unwrap_or(9_999_999_999));
        self.query_all(session_pk(key), Some(upto))
            .await?
            .iter()
            .map(from_doc)
            .collect()
    }

    async fn find_conversation(
        &self,
        bot_id: &str,
        provider_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<ConversationLink>> {
        let Some(item) = self
            .get(conv_pk(bot_id, provider_id, conversation_id), "SESSION")
            .await?
        else {
            return Ok(None);
        };
        let item = &item;
        Ok(Some(ConversationLink {
            key: SessionKey::new(get_s(item, "botId")?, get_s(item, "sessionId")?),
            handover_id: get_s(item, "handoverId")?.to_owned(),
            pending: matches!(item.get("pending"), Some(AttributeValue::Bool(true))),
        }))
    }

    async fn erase_session(&self, key: &SessionKey) -> StoreResult<usize> {
        // Everything of the session is in two partitions: its state, transcript, idempotency
        // markers and link back-references; and its outbox. Each back-reference names a
        // provider-conversation link of one of its handovers, which goes too (later callbacks
        // for it are then acknowledged as unknown instead of pointing at nothing). The state
        // goes first: a commit racing the erase fails its version condition instead of
        // writing the old session back.
        let mut keys: Vec<(String, String)> = vec![(session_pk(key), "STATE".to_owned())];
        for item in self.query_all(session_pk(key), None).await? {
            let sk = get_s(&item, "sk")?.to_owned();
            if sk.starts_with("LINK#")
                && let Ok(target) = get_s(&item, "target")
            {
                keys.push((target.to_owned(), "SESSION".to_owned()));
            }
            if sk != "STATE" {
                keys.push((session_pk(key), sk));
            }
        }
        // The outbox, and the lane of conversations abandoned for this session.
        let abandoned = SessionKey::new(&key.bot_id, &format!("{}#abandoned", key.session_id));
        for pk in [outbox_pk(key), outbox_pk(&abandoned)] {
            for item in self.query_all(pk.clone(), None).await? {
                keys.push((pk.clone(), get_s(&item, "sk")?.to_owned()));
            }
        }
        for (pk, sk) in &keys {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .send()
                .await
                .map_err(backend)?;
        }
        Ok(keys.len())
    }

    async fn put_start_intent(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        links: &[(String, String, String)],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut record: Item = HashMap::from([
            ("pk".into(), s(session_pk(key))),
            ("sk".into(), s(start_sk(&intent.provider))),
            ("botId".into(), s(&key.bot_id)),
            ("sessionId".into(), s(&key.session_id)),
            ("handoverId".into(), s(&intent.handover_id)),
            ("doc".into(), to_doc(intent)),
            ("duePk".into(), s(due_pk(key, self.shards))),
            ("dueAt".into(), n(millis(intent.due_at))),
            ("expiresAt".into(), n(expires_at.timestamp())),
        ]);
        if let Some(conv) = &intent.conversation_id {
            record.insert("conversationId".into(), s(conv));
        }
        if !intent.try_id.is_empty() {
            record.insert("tryId".into(), s(&intent.try_id));
        }
        // A try of a handover whose earlier try was cancelled stays cancelled: the put is
        // conditioned on there being no cancelled intent of this very handover, and made again
        // with the flag when there is one (a retried request must not clear a user's cancel).
        let mut link_items = Vec::new();
        for (provider, conversation, handover) in links {
            link_items.extend(self.link_items(key, (provider, conversation, handover), expires_at, true));
        }
        let values = HashMap::from([(":h".to_owned(), s(&intent.handover_id))]);
        let mut names = HashMap::from([("#h".to_owned(), "handoverId".to_owned())]);
        // Where only the provider's answer names the conversation, one copy of a request
        // creates it: an intent of this very handover means another copy is at it (or was).
        let exclusive = intent.conversation_id.is_none();
        let condition = if exclusive {
            "attribute_not_exists(#h) OR #h <> :h"
        } else {
            names.insert("#c".to_owned(), "cancelled".to_owned());
            "attribute_not_exists(#h) OR #h <> :h OR attribute_not_exists(#c)"
        };
        let guarded = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record.clone()))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("table name and item are set");
        let mut items = vec![TransactWriteItem::builder().put(guarded).build()];
        items.extend(link_items.iter().cloned());
        let first = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let cancelled_before = match first {
            Ok(_) => return Ok(()),
            Err(e) => {
                let refused = matches!(
                    e.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t))
                        if t.cancellation_reasons().first().and_then(|r| r.code()) == Some("ConditionalCheckFailed")
                );
                if !refused {
                    return Err(backend(e));
                }
                if exclusive {
                    return Err(StoreError::Duplicate);
                }
                true
            }
        };
        record.insert("cancelled".into(), AttributeValue::Bool(cancelled_before));
        let mut items = vec![put(&self.table, record, None, None)];
        items.extend(link_items);
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn start_intents(&self, key: &SessionKey) -> StoreResult<Vec<StartIntent>> {
        self.with_prefix(session_pk(key), "START#")
            .await?
            .iter()
            .map(|item| {
                let mut intent: StartIntent = from_doc(item)?;
                if let Ok(conv) = get_s(item, "conversationId") {
                    intent.conversation_id = Some(conv.to_owned());
                }
                intent.cancelled = item.contains_key("cancelled");
                intent.unresolved = item.contains_key("unresolved");
                Ok(intent)
            })
            .collect()
    }

    async fn record_start_answer(
        &self,
        key: &SessionKey,
        intent: &StartIntent,
        conversation_id: &str,
    ) -> StoreResult<()> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(key)))
            .key("sk", s(start_sk(&intent.provider)))
            .update_expression("SET #conv = :conv")
            .condition_expression("#h = :h")
            .expression_attribute_names("#conv", "conversationId")
            .expression_attribute_names("#h", "handoverId")
            .expression_attribute_values(":conv", s(conversation_id))
            .expression_attribute_values(":h", s(&intent.handover_id))
            .send()
            .await;
        // Gone or another start's: nothing of ours to record on.
        conditional(r.map(drop)).map(drop)
    }

    async fn cancel_start(&self, key: &SessionKey) -> StoreResult<Option<String>> {
        let mut cancelled = None;
        for intent in self.start_intents(key).await?.into_iter().filter(|i| !i.unresolved) {
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(session_pk(key)))
                .key("sk", s(start_sk(&intent.provider)))
                .update_expression("SET #c = :t")
                .condition_expression("#h = :h AND attribute_not_exists(#u)")
                .expression_attribute_names("#c", "cancelled")
                .expression_attribute_names("#h", "handoverId")
                .expression_attribute_names("#u", "unresolved")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":h", s(&intent.handover_id))
                .send()
                .await;
            if conditional(r.map(drop))? {
                cancelled = Some(intent.handover_id);
            }
        }
        Ok(cancelled)
    }

    async fn clear_start(&self, key: &SessionKey, intent: &StartIntent, leftover: StartLeftover) -> StoreResult<()> {
        // Another copy's try of the same handover holds the slot: its intent and the pending
        // links it shares are its own to settle.
        if self
            .start_intents(key)
            .await?
            .iter()
            .any(|i| crate::store::another_copy(i, intent))
        {
            return Ok(());
        }
        // The pending links first: once the intent is gone nothing else names them. Only a
        // link still pending for this very handover goes (a commit made it final otherwise).
        let mut ids = vec![intent.handover_id.clone()];
        ids.extend(
            intent
                .conversation_id
                .iter()
                .filter(|c| **c != intent.handover_id)
                .cloned(),
        );
        for conversation in ids {
            let r = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(conv_pk(&key.bot_id, &intent.provider, &conversation)))
                .key("sk", s("SESSION"))
                .condition_expression("#p = :t AND #h = :h")
                .expression_attribute_names("#p", "pending")
                .expression_attribute_names("#h", "handoverId")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
                .expression_attribute_values(":h", s(&intent.handover_id))
                .send()
                .await;
            if conditional(r.map(drop))? {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(session_pk(key)))
                    .key("sk", s(link_sk(&intent.provider, &conversation)))
                    .send()
                    .await
                    .map_err(backend)?;
            }
        }
        // Only this try's intent (or one written before tries had ids).
        let names = |extra: Option<(&str, &str)>| {
            let mut names = HashMap::from([
                ("#h".to_owned(), "handoverId".to_owned()),
                ("#t".to_owned(), "tryId".to_owned()),
            ]);
            names.extend(extra.map(|(k, v)| (k.to_owned(), v.to_owned())));
            Some(names)
        };
        let ours = "#h = :h AND (attribute_not_exists(#t) OR #t = :t)";
        let r = match leftover {
            StartLeftover::Unresolved => conditional(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(session_pk(key)))
                    .key("sk", s(start_sk(&intent.provider)))
                    .update_expression("SET #u = :true")
                    .condition_expression(ours)
                    .set_expression_attribute_names(names(Some(("#u", "unresolved"))))
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":h", s(&intent.handover_id))
                    .expression_attribute_values(":t", s(&intent.try_id))
                    .send()
                    .await
                    .map(drop),
            ),
            StartLeftover::Nothing | StartLeftover::IfCancelled => conditional(
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(session_pk(key)))
                    .key("sk", s(start_sk(&intent.provider)))
                    .condition_expression(if leftover == StartLeftover::IfCancelled {
                        format!("{ours} AND attribute_not_exists(#c)")
                    } else {
                        ours.to_owned()
                    })
                    .set_expression_attribute_names(names(
                        (leftover == StartLeftover::IfCancelled).then_some(("#c", "cancelled")),
                    ))
                    .expression_attribute_values(":h", s(&intent.handover_id))
                    .expression_attribute_values(":t", s(&intent.try_id))
                    .send()
                    .await
                    .map(drop),
            ),
        };
        r.map(drop)
    }

    async fn hold_early(&self, key: &SessionKey, event: &EarlyEvent, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let expires = expires_at.min(Utc::now() + Duration::hours(EARLY_TTL_HOURS));
        let item: Item = HashMap::from([
            ("pk".into(), s(session_pk(key))),
            ("sk".into(), s(early_sk(&event.provider, &event.event_id))),
            ("botId".into(), s(&key.bot_id)),
            ("sessionId".into(), s(&key.session_id)),
            ("doc".into(), to_doc(event)),
            // In the due index like a start intent: the evaluator applies or drops it.
            ("duePk".into(), s(due_pk(key, self.shards))),
            ("dueAt".into(), n(millis(event.due_at))),
            ("expiresAt".into(), n(expires.timestamp())),
        ]);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn early_events(&self, key: &SessionKey) -> StoreResult<Vec<EarlyEvent>> {
        self.with_prefix(session_pk(key), "EARLY#")
            .await?
            .iter()
            .map(from_doc)
            .collect()
    }

    async fn drop_early(&self, key: &SessionKey, provider_id: &str, event_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(key)))
            .key("sk", s(early_sk(provider_id, event_id)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
