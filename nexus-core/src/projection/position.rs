//! Positions as opaque strings, for APIs that hand them to clients.

use std::fmt::Write as _;

use crate::LogPosition;

/// A [`LogPosition`] as an opaque, URL-safe string: what an HTTP API returns
/// as a write's `"position"` and takes back as `?after=`.
///
/// Clients must treat it as opaque; only order between positions of one
/// log means anything, and only to the server.
///
/// ```
/// use nexus_core::LogPosition;
/// use nexus_core::projection::PositionToken;
/// let token = PositionToken::encode(LogPosition::new(7, 10));
/// assert_eq!(PositionToken::decode(&token).unwrap(), LogPosition::new(7, 10));
/// assert!(PositionToken::decode("not a position").is_err());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct PositionToken;

/// A string that is not a position this server handed out.
#[derive(Debug, thiserror::Error)]
#[error("`{token}` is not a log position")]
pub struct PositionTokenError {
    token: String,
}

impl PositionToken {
    /// The token of `position`.
    pub fn encode(position: LogPosition) -> String {
        let json = serde_json::to_vec(&position).expect("a position serialises");
        let mut out = String::with_capacity(json.len() * 2);
        for byte in json {
            let _ = write!(out, "{byte:02x}");
        }
        out
    }

    /// The position of `token`.
    pub fn decode(token: &str) -> Result<LogPosition, PositionTokenError> {
        let error = || PositionTokenError {
            token: token.chars().take(64).collect(),
        };
        if !token.len().is_multiple_of(2) || token.len() > 512 {
            return Err(error());
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| {
                token
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(error)?;
        serde_json::from_slice(&bytes).map_err(|_| error())
    }
}
