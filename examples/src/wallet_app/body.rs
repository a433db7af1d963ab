//! Request bodies: JSON in, validated before anything is sent to an entity.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest request body read, in bytes; a larger one is a 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body whose parse errors answer with a JSON error: 400 for
/// malformed JSON, 413 for a body over [`BODY_LIMIT`], 415 without a JSON
/// content type, 422 for a body of the wrong shape (a missing field, a
/// non-integer or out-of-range amount).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
                JsonRejection::MissingJsonContentType(e) => {
                    ApiError::UnsupportedMediaType(e.body_text())
                }
                // Reading the body failed because it is over the limit:
                // the rejection carries 413, which a 400 would hide.
                other if other.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge(format!(
                        "the body is over {BODY_LIMIT} bytes: {}",
                        other.body_text()
                    ))
                }
                other => ApiError::BadRequest(other.body_text()),
            }),
        }
    }
}

/// `{"amountCents": N}`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AmountBody {
    /// Whole cents; must be positive.
    pub amount_cents: i64,
}

/// `{"kind": "deposit" | "withdraw", "amountCents": N, "description": "..."}`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LedgerRecordBody {
    /// Which way the money moves.
    pub kind: LedgerKindBody,
    /// Whole cents; must be positive.
    pub amount_cents: i64,
    /// Free text, at most 500 characters.
    #[serde(default)]
    pub description: String,
}

/// The `kind` of a ledger record.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKindBody {
    /// Money in.
    Deposit,
    /// Money out.
    Withdraw,
}
