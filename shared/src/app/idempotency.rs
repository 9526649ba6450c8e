//! `Idempotency-Key`: a repeated request gets the first one's answer
//! instead of doing the work twice. The key is claimed before the work,
//! completed with the answer after it, and released when the work failed
//! having accepted nothing, so that the client can try again with it.

use super::AppError;
use crate::ports::{IdempotencyClaim, IdempotencyStore, StoreError};
use sha1::{Digest, Sha1};

/// A client's idempotency key: 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

/// The name errors about the key give as their field.
pub const FIELD: &str = "Idempotency-Key";
const MAX_KEY_CHARS: usize = 200;

impl Key {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let key = raw.trim();
        if key.is_empty() || key.len() > MAX_KEY_CHARS {
            return Err(AppError::invalid(
                FIELD,
                format!("must be 1 to {MAX_KEY_CHARS} characters"),
            ));
        }
        Ok(Self(key.to_owned()))
    }
}

/// What identifies "the same request": the hash of its body.
pub fn request_hash(body: &[u8]) -> String {
    Sha1::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `work` once per key: the first request does it and its answer is
/// kept for 24 hours; a repeat gets that answer; a repeat while the first
/// runs, or a different request under the same key, is a conflict. When
/// `work` fails and `accepted_nothing` says so, the key is released.
pub async fn once<E, Fut>(
    store: &dyn IdempotencyStore,
    owner: &str,
    key: &Key,
    body: &[u8],
    work: impl FnOnce() -> Fut,
    accepted_nothing: impl FnOnce(&E) -> bool,
) -> Result<serde_json::Value, E>
where
    E: From<AppError>,
    Fut: Future<Output = Result<serde_json::Value, E>>,
{
    let hash = request_hash(body);
    let claim = store
        .claim_idempotency_key(owner, &key.0, &hash)
        .await
        .map_err(AppError::from)?;
    match claim {
        IdempotencyClaim::New => {}
        IdempotencyClaim::Done { request_hash, .. }
        | IdempotencyClaim::InProgress { request_hash }
            if request_hash != hash =>
        {
            return Err(AppError::Conflict(
                "this Idempotency-Key was used for a different request".into(),
            )
            .into());
        }
        IdempotencyClaim::Done { response, .. } => {
            return serde_json::from_str(&response)
                .map_err(|e| AppError::Store(StoreError::Corrupt(e.to_string())).into());
        }
        IdempotencyClaim::InProgress { .. } => {
            return Err(AppError::Conflict(
                "a request with this Idempotency-Key is still being processed".into(),
            )
            .into());
        }
    }
    match work().await {
        Ok(answer) => {
            store
                .complete_idempotency_key(owner, &key.0, &answer.to_string())
                .await
                .map_err(AppError::from)?;
            Ok(answer)
        }
        Err(err) => {
            if accepted_nothing(&err) {
                store
                    .release_idempotency_key(owner, &key.0)
                    .await
                    .map_err(AppError::from)?;
            }
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryStore;
    use serde_json::{Value, json};
    use std::sync::atomic::{AtomicU32, Ordering};

    const OWNER: &str = "organizer-1";

    async fn run(
        store: &MemoryStore,
        key: &Key,
        body: &[u8],
        runs: &AtomicU32,
        outcome: Result<Value, AppError>,
    ) -> Result<Value, AppError> {
        once(
            store,
            OWNER,
            key,
            body,
            || async {
                runs.fetch_add(1, Ordering::SeqCst);
                outcome
            },
            |err: &AppError| matches!(err, AppError::Invalid(_)),
        )
        .await
    }

    #[tokio::test]
    async fn a_repeat_gets_the_first_answer_without_doing_the_work_again() {
        let store = MemoryStore::new();
        let key = Key::parse(" k1 ").unwrap();
        let runs = AtomicU32::new(0);
        let first = run(&store, &key, b"{}", &runs, Ok(json!({"job_id": "j1"}))).await;
        let again = run(&store, &key, b"{}", &runs, Ok(json!({"job_id": "j2"}))).await;
        assert_eq!(first.unwrap(), json!({"job_id": "j1"}));
        assert_eq!(again.unwrap(), json!({"job_id": "j1"}));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        match run(&store, &key, b"{\"other\": 1}", &runs, Ok(json!({}))).await {
            Err(AppError::Conflict(why)) => assert!(why.contains("different request"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_key_in_use_is_a_conflict_and_a_refused_request_frees_it() {
        let store = MemoryStore::new();
        let key = Key::parse("k2").unwrap();
        let runs = AtomicU32::new(0);
        let hash = request_hash(b"{}");
        store
            .claim_idempotency_key(OWNER, "busy", &hash)
            .await
            .unwrap();
        let busy = Key::parse("busy").unwrap();
        match run(&store, &busy, b"{}", &runs, Ok(json!({}))).await {
            Err(AppError::Conflict(why)) => assert!(why.contains("still being processed"), "{why}"),
            other => panic!("{other:?}"),
        }
        let refused = run(
            &store,
            &key,
            b"{}",
            &runs,
            Err(AppError::invalid("guests", "bad")),
        )
        .await;
        assert!(matches!(refused, Err(AppError::Invalid(_))));
        let retried = run(&store, &key, b"{}", &runs, Ok(json!({"ok": true}))).await;
        assert_eq!(retried.unwrap(), json!({"ok": true}));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn keys_are_1_to_200_characters() {
        assert!(Key::parse("  ").is_err());
        assert!(Key::parse(&"k".repeat(201)).is_err());
        assert!(Key::parse(&"k".repeat(200)).is_ok());
        match Key::parse("") {
            Err(AppError::Invalid(e)) => assert_eq!(e.field, FIELD),
            other => panic!("{other:?}"),
        }
    }
}
