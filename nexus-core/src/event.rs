//! The domain event contract: stable names and schema versions.

use serde::{Serialize, de::DeserializeOwned};

/// A domain event enum whose variants carry stable names and schema versions.
///
/// The name and version are stored beside every payload, so that an old event
/// can be recognised and upcast after the Rust type changes. Derive it with
/// `#[derive(DomainEvent)]` or implement it by hand:
///
/// ```
/// use nexus_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// enum WalletEvent {
///     Deposited { amount: i64 },
///     Withdrawn { amount: i64 },
/// }
///
/// impl DomainEvent for WalletEvent {
///     const EVENT_TYPES: &'static [&'static str] = &["wallet.deposited", "wallet.withdrawn"];
///     fn event_type(&self) -> &'static str {
///         match self {
///             Self::Deposited { .. } => "wallet.deposited",
///             Self::Withdrawn { .. } => "wallet.withdrawn",
///         }
///     }
/// }
///
/// assert_eq!(WalletEvent::Deposited { amount: 1 }.event_type(), "wallet.deposited");
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Every name [`event_type`](Self::event_type) can return.
    const EVENT_TYPES: &'static [&'static str];

    /// The stable name of this value's variant.
    fn event_type(&self) -> &'static str;

    /// The schema version this program writes for `event_type`.
    fn schema_version_of(event_type: &str) -> u32 {
        let _ = event_type;
        1
    }

    /// The schema version of this value.
    fn schema_version(&self) -> u32 {
        Self::schema_version_of(self.event_type())
    }
}
