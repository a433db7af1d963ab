//! Who is calling: `Authorization: Bearer <owner>-token`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;

/// The authenticated wallet owner: `[a-z0-9_-]{1,64}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner(pub String);

impl Owner {
    /// Parses the value of an `Authorization` header.
    ///
    /// ```
    /// use nexus_examples::wallet_app::Owner;
    /// assert_eq!(Owner::from_header("Bearer alice-token").unwrap().0, "alice");
    /// assert!(Owner::from_header("Bearer Alice-token").is_err());
    /// assert!(Owner::from_header("Basic YWxpY2U6").is_err());
    /// ```
    pub fn from_header(value: &str) -> Result<Self, ApiError> {
        let owner = value
            .strip_prefix("Bearer ")
            .and_then(|token| token.strip_suffix("-token"))
            .ok_or(ApiError::Unauthorized(
                "expected `Authorization: Bearer <owner>-token`",
            ))?;
        let valid = (1..=64).contains(&owner.len())
            && owner
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(ApiError::Unauthorized(
                "the owner in the token must match [a-z0-9_-]{1,64}",
            ));
        }
        Ok(Self(owner.to_owned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing `Authorization: Bearer <owner>-token`",
            ))?
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is not text"))?;
        Self::from_header(header)
    }
}
