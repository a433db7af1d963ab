//! `Idempotency-Key`: a client that retries a write with the same key gets
//! the same answer, and the write happens once.
//!
//! Two layers, because each covers what the other cannot:
//! - **The entity** deduplicates the command itself: the key becomes the
//!   command's id (`CommandOptions::command_id`), from which the ids of its
//!   events are derived, so a retry of a committed deposit writes nothing
//!   and answers the original reply, also after a crash between the commit
//!   and the answer, and for concurrent duplicates.
//! - **The key table** remembers what the first request was and what it was
//!   answered: the same key with another body is refused (422), and a
//!   definitive answer (200, or a 409 rejection, which writes nothing and so
//!   leaves no event to replay) is given again as it was. The row is claimed
//!   before the command runs and completed after; a request that finds it
//!   claimed but not completed (a concurrent duplicate, or a crash in
//!   between) runs the command under the same id, which the entity
//!   deduplicates.
//!
//! On Postgres the table lives in the app's schema, beside the stores.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::OptionalFromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ApiError;

/// The header clients send.
pub const HEADER: &str = "idempotency-key";

/// Names the key space of the app's command ids, so that a key is a
/// command id of this app only.
const NAMESPACE: Uuid = Uuid::from_u128(0x6e65_7875_735f_7761_6c6c_6574_5f6b_6579);

/// An `Idempotency-Key` header: 1 to 255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    /// The command id of this key for `owner`: the same for every retry.
    pub fn command_id(&self, owner: &str) -> Uuid {
        Uuid::new_v5(&NAMESPACE, format!("{owner}\0{}", self.0).as_bytes())
    }
}

/// No header is no key; a malformed one is a 400.
impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, ApiError> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(None);
        };
        let key = value
            .to_str()
            .ok()
            .filter(|key| (1..=255).contains(&key.len()))
            .filter(|key| key.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned(),
                )
            })?;
        Ok(Some(Self(key.to_owned())))
    }
}

/// What the key table says about a key before the command runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use, or used by the same request and not answered yet: run the
    /// command under the key's command id.
    Run,
    /// Answered before: give this answer again.
    Answered {
        /// The status of the first answer.
        status: StatusCode,
        /// Its body.
        body: Value,
    },
    /// The key was used for another request.
    Mismatch,
}

/// Where keys are kept.
#[derive(Debug)]
pub enum KeyTable {
    /// In memory, with the in-memory stores.
    Memory(Mutex<HashMap<(String, String), Entry>>),
    /// A table in the app's Postgres schema.
    Postgres {
        /// The stores' pool.
        pool: PgPool,
        /// The quoted schema name.
        schema: String,
    },
}

/// One key's row.
#[derive(Clone, Debug)]
pub struct Entry {
    request: String,
    answer: Option<(u16, Value)>,
}

const CREATE: &str = r"
CREATE TABLE IF NOT EXISTS {schema}.wallet_idempotency_keys (
    owner      text        NOT NULL,
    key        text        NOT NULL,
    request    text        NOT NULL,
    status     smallint,
    body       jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
)";

/// Claims the key or reads the row that holds it, in one statement.
const CLAIM: &str = r"
WITH claimed AS (
    INSERT INTO {schema}.wallet_idempotency_keys (owner, key, request) VALUES ($1, $2, $3)
    ON CONFLICT (owner, key) DO NOTHING
    RETURNING request, status, body
)
SELECT request, status, body FROM claimed
UNION ALL
SELECT request, status, body FROM {schema}.wallet_idempotency_keys
WHERE owner = $1 AND key = $2 AND NOT EXISTS (SELECT FROM claimed)
";

/// Records the first definitive answer; a later one never replaces it.
const ANSWER: &str = r"
UPDATE {schema}.wallet_idempotency_keys SET status = $4, body = $5
WHERE owner = $1 AND key = $2 AND request = $3 AND status IS NULL
";

fn unavailable(error: &sqlx::Error) -> ApiError {
    ApiError::Unavailable(format!("the idempotency key table: {error}"))
}

impl KeyTable {
    /// A table in memory.
    pub fn memory() -> Self {
        Self::Memory(Mutex::default())
    }

    /// The table in `schema` (quoted), created if missing.
    pub async fn postgres(pool: PgPool, schema: String) -> Result<Self, sqlx::Error> {
        sqlx::query(&CREATE.replace("{schema}", &schema))
            .execute(&pool)
            .await?;
        Ok(Self::Postgres { pool, schema })
    }

    /// What to do with `request` (the route and its body) under `key`.
    pub async fn claim(
        &self,
        owner: &str,
        key: &IdempotencyKey,
        request: &str,
    ) -> Result<Claim, ApiError> {
        let entry = match self {
            Self::Memory(keys) => keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry((owner.to_owned(), key.0.clone()))
                .or_insert_with(|| Entry {
                    request: request.to_owned(),
                    answer: None,
                })
                .clone(),
            Self::Postgres { pool, schema } => {
                let (stored, status, body) = claim_row(pool, schema, owner, key, request).await?;
                Entry {
                    request: stored,
                    answer: status
                        .zip(body)
                        .map(|(status, body)| (u16::try_from(status).unwrap_or(500), body)),
                }
            }
        };
        Ok(if entry.request != request {
            Claim::Mismatch
        } else if let Some((status, body)) = entry.answer {
            Claim::Answered {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
            }
        } else {
            Claim::Run
        })
    }

    /// Records the answer to `request` under `key`, once. A failure to
    /// record is logged, not reported: the answer stands, and a retry runs
    /// the command again under the same id, which writes nothing twice.
    pub async fn answer(
        &self,
        owner: &str,
        key: &IdempotencyKey,
        request: &str,
        status: StatusCode,
        body: &Value,
    ) {
        match self {
            Self::Memory(keys) => {
                let mut keys = keys
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(entry) = keys.get_mut(&(owner.to_owned(), key.0.clone()))
                    && entry.request == request
                    && entry.answer.is_none()
                {
                    entry.answer = Some((status.as_u16(), body.clone()));
                }
            }
            Self::Postgres { pool, schema } => {
                let recorded = sqlx::query(&ANSWER.replace("{schema}", schema))
                    .bind(owner)
                    .bind(&key.0)
                    .bind(request)
                    .bind(i16::try_from(status.as_u16()).unwrap_or(500))
                    .bind(body)
                    .execute(pool)
                    .await;
                if let Err(error) = recorded {
                    tracing::warn!(%error, owner, "recording an idempotent answer failed");
                }
            }
        }
    }
}

/// Claims `key` or reads its row. A concurrent claim of the same key makes
/// the insert wait for it and then do nothing, while the statement's own
/// snapshot, taken before that claim committed, cannot see its row: zero
/// rows. A second statement, with a fresh snapshot, sees it.
async fn claim_row(
    pool: &PgPool,
    schema: &str,
    owner: &str,
    key: &IdempotencyKey,
    request: &str,
) -> Result<(String, Option<i16>, Option<Value>), ApiError> {
    let sql = CLAIM.replace("{schema}", schema);
    for _ in 0..3 {
        let row = sqlx::query_as(&sql)
            .bind(owner)
            .bind(&key.0)
            .bind(request)
            .fetch_optional(pool)
            .await
            .map_err(|e| unavailable(&e))?;
        if let Some(row) = row {
            return Ok(row);
        }
    }
    Err(ApiError::Unavailable(format!(
        "the idempotency key {:?} is being claimed concurrently",
        key.0
    )))
}

/// Whether an answer is definitive, and so given again for the same key:
/// a success, or a rejection (which writes nothing and leaves no event to
/// answer from). Availability failures are not: the client should retry.
pub fn is_definitive(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::CONFLICT
}
