//! How failures become HTTP answers: always JSON, never a stack trace.

use axum::http::{HeaderValue, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An HTTP error answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 401: no or a malformed bearer token.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 400: malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 413: the body is over the size limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 415: not JSON.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 409: the balance does not cover the withdrawal.
    #[error("insufficient funds: balance {balance_cents}, requested {requested_cents}")]
    InsufficientFunds {
        /// The current balance.
        balance_cents: i64,
        /// The requested amount.
        requested_cents: i64,
    },
    /// 503 with `Retry-After: 1`: a full mailbox, an exhausted pool, an
    /// unreachable database, a timeout, a shutdown in progress, or an owner
    /// node (in a cluster) that could not be reached or did not answer.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 404: no such route.
    #[error("not found")]
    NotFound,
    /// 500: anything else (logged, not shown).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Maps a runtime failure that is not a domain rejection: availability
    /// problems are 503, the rest 500.
    pub fn from_entity<E: std::fmt::Display>(error: &nexus_core::EntityError<E>) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error.to_string())
        } else {
            Self::Internal(error.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Self::Unauthorized(m) => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "message": m}),
            ),
            Self::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "message": m}),
            ),
            Self::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "payload_too_large", "message": m}),
            ),
            Self::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"error": "unsupported_media_type", "message": m}),
            ),
            Self::Unprocessable(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid_request", "message": m}),
            ),
            Self::InsufficientFunds {
                balance_cents,
                requested_cents,
            } => (
                StatusCode::CONFLICT,
                json!({
                    "error": "insufficient_funds",
                    "balanceCents": balance_cents,
                    "requestedCents": requested_cents,
                }),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": "no such endpoint; GET / lists them"}),
            ),
            Self::Unavailable(m) => {
                tracing::warn!(reason = %m, "answering 503");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({"error": "unavailable", "message": m})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            Self::Internal(m) => {
                tracing::error!(error = %m, "answering 500");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal", "message": "internal error; see the server log"}),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use nexus_core::{EntityError, StoreError, StreamId};

    use super::ApiError;

    fn status_and_retry(error: &EntityError<std::fmt::Error>) -> (StatusCode, Option<String>) {
        let response = ApiError::from_entity(error).into_response();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status(), retry)
    }

    #[test]
    fn availability_failures_are_503_with_retry_after() {
        let stream = StreamId::new("wallet-alice");
        let unavailable = [
            EntityError::MailboxFull {
                stream: stream.clone(),
                capacity: 8,
            },
            EntityError::Timeout {
                stream: stream.clone(),
                after: Duration::from_secs(3),
            },
            EntityError::ShuttingDown {
                stream: stream.clone(),
            },
            EntityError::Store(StoreError::PoolExhausted { waited_ms: 2000 }),
            EntityError::Store(StoreError::Unavailable {
                source: "connection refused".into(),
            }),
            // The owner on another node of the cluster: not reached, or no
            // answer (a retry with the idempotency key is safe).
            EntityError::Unreachable {
                stream: stream.clone(),
                node: "10.0.0.2:7000".into(),
                source: "connection refused".into(),
            },
            EntityError::Interrupted {
                stream: stream.clone(),
                node: "10.0.0.2:7000".into(),
                source: "timed out".into(),
            },
        ];
        for error in &unavailable {
            assert_eq!(
                status_and_retry(error),
                (StatusCode::SERVICE_UNAVAILABLE, Some("1".to_owned())),
                "{error}"
            );
        }
    }

    #[test]
    fn other_failures_are_500_without_details() {
        let error = EntityError::<std::fmt::Error>::Store(StoreError::Backend {
            source: "secret detail".into(),
        });
        assert_eq!(
            status_and_retry(&error),
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        );
    }
}
