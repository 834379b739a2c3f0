//! `Idempotency-Key` on POST (API.md, Conventions): a client that retries a
//! command whose answer it lost gets the first answer again instead of a
//! second share, import or email. The HTTP side is `http::idempotency`; this
//! is what the domain's transactions take part in.
//!
//! The key is claimed *inside the transaction that makes the request's
//! effect*: [`crate::db::begin`] inserts the claim when the request being
//! served carries a key ([`CLAIM`], a task-local set by the middleware). So a
//! claim exists exactly when the effect committed, whatever crashes where:
//! - no claim: the first attempt changed nothing, and the retry runs;
//! - a claim with its answer: the retry gets that answer;
//! - a claim without an answer: the effect happened once, but its answer
//!   was not recorded (the first attempt is still finishing, or its process
//!   died between commit and record): 409, read the resource back.
//!
//! Two attempts at once both run, and the second's claim waits on the
//! first's row lock: when the first commits, the second fails with 409
//! before doing anything. Keys are per bearer token and kept [`TTL_HOURS`].

use sqlx::{PgConnection, PgPool};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// How long a key is kept (at least; the sweep deletes older ones).
pub const TTL_HOURS: i64 = 24;

tokio::task_local! {
    /// The key of the request being served, if it carries one.
    pub static CLAIM: Arc<Claim>;
}

/// One request's key: who (a hash of its token), the key, and a hash of the
/// request (method, path and body), so that reusing a key for another
/// request is refused.
pub struct Claim {
    pub scope: [u8; 32],
    pub key: String,
    pub request_hash: [u8; 32],
    state: Mutex<ClaimState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// No transaction of this request has claimed the key yet.
    Open,
    /// A transaction of this request inserted the claim.
    Taken,
    /// Another request with the same key claimed it first.
    Lost,
}

impl Claim {
    pub fn new(scope: [u8; 32], key: String, request_hash: [u8; 32]) -> Self {
        Claim {
            scope,
            key,
            request_hash,
            state: Mutex::new(ClaimState::Open),
        }
    }

    pub fn state(&self) -> ClaimState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, state: ClaimState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// The current request's key when no transaction claimed it yet, for a
/// command that claims it in its own one statement (then [`Claim::settle`]).
pub fn pending() -> Option<Arc<Claim>> {
    CLAIM
        .try_with(Arc::clone)
        .ok()
        .filter(|c| c.state() == ClaimState::Open)
}

/// SQL that claims a key, `RETURNING 1` when taken: [`claim`]'s statement,
/// for commands that fold it into theirs. `rows` yields (scope, key,
/// request hash) (a `VALUES` or a `SELECT`), `t` is the TTL in hours; both
/// with the caller's placeholders.
pub fn claim_sql(rows: &str, t: &str) -> String {
    format!(
        "INSERT INTO idempotency_keys (scope, key, request_hash) {rows}
         ON CONFLICT (scope, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, created_at = now(),
                status = NULL, content_type = NULL, body = NULL
          WHERE idempotency_keys.created_at < now() - make_interval(hours => {t}::int)
         RETURNING 1"
    )
}

impl Claim {
    /// Record what a command's own statement did with the key: taken, or
    /// found claimed by another request (409, as [`claim`]).
    pub fn settle(&self, taken: bool) -> Result<()> {
        if taken {
            self.set(ClaimState::Taken);
            Ok(())
        } else {
            self.set(ClaimState::Lost);
            Err(lost())
        }
    }
}

fn lost() -> Error {
    Error::Conflict(
        "another request with this Idempotency-Key was applied meanwhile; send it again to get its answer"
            .into(),
    )
}

/// Claim the current request's key in `tx`, the first time a transaction of
/// this request asks; a no-op for requests without a key (and for workers).
pub async fn claim(tx: &mut PgConnection) -> Result<()> {
    let Ok(claim) = CLAIM.try_with(Arc::clone) else {
        return Ok(());
    };
    if claim.state() != ClaimState::Open {
        return Ok(());
    }
    // An expired claim of the same key is replaced.
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| claim_sql("VALUES ($1, $2, $3)", "$4"));
    let taken: Option<i32> = sqlx::query_scalar(SQL.as_str())
        .bind(&claim.scope[..])
        .bind(&claim.key)
        .bind(&claim.request_hash[..])
        .bind(TTL_HOURS as i32)
        .fetch_optional(&mut *tx)
        .await?;
    claim.settle(taken.is_some())
}

/// A key's record, as a retry finds it.
pub struct Recorded {
    pub request_hash: Vec<u8>,
    /// `None` while the answer is not recorded.
    pub answer: Option<Answer>,
}

pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The live record of `key` for `scope`, if any.
pub async fn find(db: &PgPool, scope: &[u8; 32], key: &str) -> Result<Option<Recorded>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        request_hash: Vec<u8>,
        status: Option<i16>,
        content_type: Option<String>,
        body: Option<Vec<u8>>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT request_hash, status, content_type, body FROM idempotency_keys
          WHERE scope = $1 AND key = $2
            AND created_at >= now() - make_interval(hours => $3::int)",
    )
    .bind(&scope[..])
    .bind(key)
    .bind(TTL_HOURS as i32)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Recorded {
        request_hash: r.request_hash,
        answer: r.status.map(|s| Answer {
            status: s as u16,
            content_type: r.content_type,
            body: r.body.unwrap_or_default(),
        }),
    }))
}

/// Record the answer of `claim`'s request. A claim taken in the effect's
/// transaction is completed; a request that made no claim (its handler
/// wrote without [`crate::db::begin`]) records key and answer together.
pub async fn record(db: &PgPool, claim: &Claim, answer: &Answer) -> Result<()> {
    let sql = match claim.state() {
        ClaimState::Taken => {
            "UPDATE idempotency_keys SET status = $4, content_type = $5, body = $6
              WHERE scope = $1 AND key = $2 AND request_hash = $3"
        }
        ClaimState::Open => {
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, content_type, body)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING"
        }
        ClaimState::Lost => return Ok(()),
    };
    sqlx::query(sql)
        .bind(&claim.scope[..])
        .bind(&claim.key)
        .bind(&claim.request_hash[..])
        .bind(answer.status as i16)
        .bind(&answer.content_type)
        .bind(&answer.body)
        .execute(db)
        .await?;
    Ok(())
}

/// Delete keys older than [`TTL_HOURS`]; the number deleted.
pub async fn sweep(db: &PgPool) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1::int)",
    )
    .bind(TTL_HOURS as i32)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// R60 (N6): a recorded answer can carry a secret (a new user's bearer
/// token), so it is kept sealed: ChaCha20-Poly1305 under a key derived from
/// the requester's own bearer token and the Idempotency-Key, with the
/// request's hash as associated data. The table holds only the token's
/// SHA-256 (the scope), so whoever reads it — a database reader, a backup —
/// cannot open an answer; the client retrying with its token can.
pub mod sealing {
    use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
    use hmac::{Hmac, Mac};

    const NONCE: usize = 12;

    fn cipher(token: &[u8], key: &str) -> ChaCha20Poly1305 {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(token).expect("any key length");
        mac.update(b"caseshare idempotent answer\0");
        mac.update(key.as_bytes());
        let derived = mac.finalize().into_bytes();
        ChaCha20Poly1305::new(Key::from_slice(&derived))
    }

    /// nonce || ciphertext of `body`.
    pub fn seal(token: &[u8], key: &str, request_hash: &[u8; 32], body: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher(token, key)
            .encrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: request_hash,
                },
            )
            .expect("encryption of an in-memory answer");
        [nonce.as_slice(), &sealed].concat()
    }

    /// The body sealed by [`seal`] with the same token, key and request, or
    /// `None` (another token, a tampered or an unsealed record).
    pub fn open(
        token: &[u8],
        key: &str,
        request_hash: &[u8; 32],
        stored: &[u8],
    ) -> Option<Vec<u8>> {
        if stored.len() < NONCE {
            return None;
        }
        let (nonce, sealed) = stored.split_at(NONCE);
        cipher(token, key)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: request_hash,
                },
            )
            .ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // R60: only the same token, key and request open a sealed answer,
        // and the stored bytes do not contain the answer.
        #[test]
        fn r60_answers_open_only_with_the_requesters_token() {
            let body = br#"{"token":"secret-bearer-token"}"#;
            let hash = [7u8; 32];
            let stored = seal(b"Bearer t1", "k1", &hash, body);
            assert!(!stored.windows(6).any(|w| w == b"secret"));
            assert_eq!(open(b"Bearer t1", "k1", &hash, &stored).unwrap(), body);
            assert!(open(b"Bearer t2", "k1", &hash, &stored).is_none());
            assert!(open(b"Bearer t1", "k2", &hash, &stored).is_none());
            assert!(open(b"Bearer t1", "k1", &[8u8; 32], &stored).is_none());
            assert!(open(b"Bearer t1", "k1", &hash, body).is_none());
        }
    }
}
