//! `Idempotency-Key`: a repeated request gets the first one's answer
//! instead of doing the work twice.
//!
//! The key is claimed before the work (for [`LEASE_SECONDS`]) and completed
//! with the answer after it. The work under a key is itself repeatable: the
//! job it creates is named after the key ([`Key::job_id`]), and a repeat
//! finds what an earlier try wrote instead of writing it again. So a try
//! that fails releases the key, and one that dies (a timeout) is taken over
//! once its lease ends; either way the client's retry with the same key
//! finishes the same job, and no guest gets a second message.

use super::AppError;
use crate::domain::JobId;
use crate::ports::{IdempotencyClaim, IdempotencyStore, KeyClaim, StoreError};
use sha1::{Digest, Sha1};

/// How long a claim holds before the same request may take it over: longer
/// than send-bulk can run (its timeout is 29 s).
pub const LEASE_SECONDS: i64 = 120;

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

    /// The job a request under this key creates: the same for every try.
    pub fn job_id(&self, owner: &str) -> JobId {
        let digest = hex(&Sha1::digest(format!("{owner}\n{}", self.0).as_bytes()));
        JobId::parse(&format!("job_{}", &digest[..32])).expect("a hex job id parses")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What identifies "the same request": the hash of its body.
pub fn request_hash(body: &[u8]) -> String {
    hex(&Sha1::digest(body))
}

/// Runs `work` once per key: the first request does it and its answer is
/// kept for 24 hours; a repeat gets that answer; a repeat while the first
/// runs is told so ([`AppError::InProgress`]), and a different request
/// under the same key is a conflict. When `work` fails the key is released.
pub async fn once<E, Fut>(
    store: &dyn IdempotencyStore,
    owner: &str,
    key: &Key,
    body: &[u8],
    work: impl FnOnce() -> Fut,
) -> Result<serde_json::Value, E>
where
    E: From<AppError>,
    Fut: Future<Output = Result<serde_json::Value, E>>,
{
    let hash = request_hash(body);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claim = KeyClaim {
        request_hash: hash.clone(),
        token: uuid::Uuid::new_v4().simple().to_string(),
        now,
        lease_until: now + LEASE_SECONDS,
    };
    let claimed = store
        .claim_idempotency_key(owner, &key.0, &claim)
        .await
        .map_err(AppError::from)?;
    match claimed {
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
            return Err(AppError::InProgress(
                "a request with this Idempotency-Key is still being processed; send it again in a few seconds".into(),
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
            // Safe whatever the work got done: a retry finishes the same job.
            store
                .release_idempotency_key(owner, &key.0)
                .await
                .map_err(AppError::from)?;
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
        once(store, OWNER, key, body, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            outcome
        })
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
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claim = |token: &str, lease_until: i64| KeyClaim {
            request_hash: request_hash(b"{}"),
            token: token.into(),
            now,
            lease_until,
        };
        store
            .claim_idempotency_key(OWNER, "busy", &claim("first", now + LEASE_SECONDS))
            .await
            .unwrap();
        let busy = Key::parse("busy").unwrap();
        match run(&store, &busy, b"{}", &runs, Ok(json!({}))).await {
            Err(AppError::InProgress(why)) => {
                assert!(why.contains("still being processed"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // The same request's claim, made again after its answer was lost, is its own.
        assert_eq!(
            store
                .claim_idempotency_key(OWNER, "busy", &claim("first", now + LEASE_SECONDS))
                .await
                .unwrap(),
            IdempotencyClaim::New
        );
        // A claim whose request died is taken over once its lease ends.
        store
            .claim_idempotency_key(OWNER, "dead", &claim("died", now - 1))
            .await
            .unwrap();
        let dead = Key::parse("dead").unwrap();
        let taken = run(&store, &dead, b"{}", &runs, Ok(json!({"job": 1}))).await;
        assert_eq!(taken.unwrap(), json!({"job": 1}));
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
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_key_names_the_same_job_for_its_owner_every_time() {
        let key = Key::parse("order-7").unwrap();
        assert_eq!(key.job_id("a"), key.job_id("a"));
        assert_ne!(key.job_id("a"), key.job_id("b"));
        assert!(key.job_id("a").as_str().starts_with("job_"));
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
