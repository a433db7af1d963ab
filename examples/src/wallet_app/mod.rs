//! The wallet HTTP app.
mod auth;
mod body;
mod error;
pub use auth::Owner;
pub use error::ApiError;
