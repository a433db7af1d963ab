//! `GET /admin/wallets`: every ledger ranked by net balance, read straight
//! from the stored rows (plain SQL on Postgres), not through the entities.

use serde::Serialize;

use super::backend::Backend;
use super::error::ApiError;
use super::ledger::Ledger;

/// One line of the ranking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ranked {
    /// The owner.
    pub owner: String,
    /// The ledger's net balance in cents.
    pub net_cents: i64,
}

const PREFIX: &str = "ledger-";

/// The ledgers, highest net first, owners ascending among equals.
pub async fn ranking(backend: &Backend) -> Result<Vec<Ranked>, ApiError> {
    match backend {
        Backend::Memory { states, .. } => {
            let mut ranked = Vec::new();
            for (id, row) in states.rows() {
                let Some(owner) = id.as_str().strip_prefix(PREFIX) else {
                    continue;
                };
                let ledger: Ledger = serde_json::from_slice(&row.payload)
                    .map_err(|e| ApiError::Internal(format!("ledger row {id}: {e}")))?;
                ranked.push(Ranked {
                    owner: owner.to_owned(),
                    net_cents: ledger.net_cents,
                });
            }
            ranked.sort_by(|a, b| {
                b.net_cents
                    .cmp(&a.net_cents)
                    .then_with(|| a.owner.cmp(&b.owner))
            });
            Ok(ranked)
        }
        Backend::Postgres(config) => {
            let sql = format!(
                "SELECT substr(id, {start}) AS owner,
                        (convert_from(payload, 'UTF8')::jsonb ->> 'netCents')::bigint AS net_cents
                 FROM {schema}.states
                 WHERE id LIKE '{PREFIX}%' AND NOT deleted
                 ORDER BY net_cents DESC, owner",
                start = PREFIX.len() + 1,
                schema = config.schema_name().as_str(),
            );
            let rows: Vec<(String, i64)> = sqlx::query_as(&sql)
                .fetch_all(config.pool())
                .await
                .map_err(sql_error)?;
            Ok(rows
                .into_iter()
                .map(|(owner, net_cents)| Ranked { owner, net_cents })
                .collect())
        }
    }
}

fn sql_error(error: sqlx::Error) -> ApiError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            ApiError::Unavailable(error.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    }
}
