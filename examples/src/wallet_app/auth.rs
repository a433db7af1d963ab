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

/// Whether `header` (an `Authorization` value) carries the admin `token`
/// as `Bearer TOKEN`, compared in time independent of where they differ.
///
/// ```
/// use nexus_examples::wallet_app::admin_authorized;
/// assert!(admin_authorized(Some("Bearer s3cret"), "s3cret"));
/// assert!(!admin_authorized(Some("Bearer s3cre"), "s3cret"));
/// assert!(!admin_authorized(None, "s3cret"));
/// ```
pub fn admin_authorized(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (given, token) = (given.as_bytes(), token.as_bytes());
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The guard of `/admin/*` under `--admin-token`: 401 unless the request
/// carries `Authorization: Bearer TOKEN`.
pub async fn require_admin(
    axum::extract::State(token): axum::extract::State<std::sync::Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if admin_authorized(header, &token) {
        next.run(request).await
    } else {
        ApiError::Unauthorized("the admin endpoints need `Authorization: Bearer <admin token>`")
            .into_response()
    }
}
