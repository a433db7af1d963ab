//! A stock item that reserves units until none are left: the reserve/reject
//! domain of the multi-process staleness tests (`stock_hammer`).
//!
//! [`Restock`] adds units; [`Reserve`] takes some, or is rejected with the
//! quantity available (and the version it was decided on) when it asks for
//! more; [`Available`] reads the quantity. The quantity never goes below
//! zero, and with one restock before any reservation it only goes down, so
//! a later version never shows more units than an earlier one.
//!
//! ```
//! use nexus_core::testkit::given;
//! use nexus_tests::stock_item::{Reserve, StockError, StockEvent, StockItem, StockView};
//!
//! given::<StockItem>([StockEvent::Restocked { qty: 5 }])
//!     .ask(Reserve { qty: 3 })
//!     .then_expect_events([StockEvent::Reserved { qty: 3 }])
//!     .then_expect_reply(StockView { available: 2, version: 2 });
//! given::<StockItem>([StockEvent::Restocked { qty: 5 }])
//!     .ask(Reserve { qty: 6 })
//!     .then_expect_rejection(StockError::Insufficient { available: 5, requested: 6, version: 1 });
//! ```

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// The state of one stock item.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockItem {
    available: u64,
    version: u64,
}

impl StockItem {
    /// The quantity with the version it is as of.
    pub fn view(&self) -> StockView {
        StockView {
            available: self.available,
            version: self.version,
        }
    }
}

/// What every command replies: the quantity available right after it and
/// the stream version that is as of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    /// Units not reserved.
    pub available: u64,
    /// The stream version (0 for an item with no events).
    pub version: u64,
}

/// What happened to a stock item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "stock_item")]
pub enum StockEvent {
    /// `qty` units arrived.
    Restocked {
        /// Units, positive.
        qty: u64,
    },
    /// `qty` units were reserved.
    Reserved {
        /// Units, positive and at most the quantity available at the time.
        qty: u64,
    },
}

/// Why a stock item rejected a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StockError {
    /// Restocks and reservations move at least one unit.
    #[error("the quantity must be positive")]
    ZeroQuantity,
    /// More units asked for than are available.
    #[error("{requested} units requested, {available} available (as of version {version})")]
    Insufficient {
        /// Units available when the reservation was decided.
        available: u64,
        /// Units asked for.
        requested: u64,
        /// The version the decision was made on.
        version: u64,
    },
    /// The quantity would not fit in a `u64`.
    #[error("restocking {qty} units onto {available} overflows")]
    Overflow {
        /// Units available.
        available: u64,
        /// Units offered.
        qty: u64,
    },
}

/// Add `qty` units; replies the new [`StockView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restock {
    /// Units, positive.
    pub qty: u64,
}

/// Reserve `qty` units; replies the new [`StockView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserve {
    /// Units, positive.
    pub qty: u64,
}

/// Read the [`StockView`]; persists nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Available;

#[aggregate(
    name = "stock_item",
    event = StockEvent,
    error = StockError,
    commands(Restock, Reserve, Available)
)]
impl StockItem {
    #[handle]
    fn restock(&self, command: &Restock) -> Result<Effect<Self, StockView>, StockError> {
        if command.qty == 0 {
            return Err(StockError::ZeroQuantity);
        }
        self.available
            .checked_add(command.qty)
            .ok_or(StockError::Overflow {
                available: self.available,
                qty: command.qty,
            })?;
        Ok(Effect::persist(StockEvent::Restocked { qty: command.qty }).then_reply(Self::view))
    }

    #[handle]
    fn reserve(&self, command: &Reserve) -> Result<Effect<Self, StockView>, StockError> {
        if command.qty == 0 {
            return Err(StockError::ZeroQuantity);
        }
        if command.qty > self.available {
            return Err(StockError::Insufficient {
                available: self.available,
                requested: command.qty,
                version: self.version,
            });
        }
        Ok(Effect::persist(StockEvent::Reserved { qty: command.qty }).then_reply(Self::view))
    }

    #[handle]
    fn available_query(&self, _: &Available) -> Result<Effect<Self, StockView>, StockError> {
        Ok(Effect::none().then_reply(Self::view))
    }

    #[apply]
    fn apply(&mut self, event: &StockEvent) {
        // The handlers refused every quantity that would leave `0..=u64::MAX`.
        self.version += 1;
        match event {
            StockEvent::Restocked { qty } => self.available = self.available.saturating_add(*qty),
            StockEvent::Reserved { qty } => self.available = self.available.saturating_sub(*qty),
        }
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::testkit::{given, given_no_events};
    use nexus_core::{Aggregate, DomainEvent};

    use super::*;

    #[test]
    fn reserving_everything_leaves_zero_and_then_nothing_more_is_reserved() {
        given::<StockItem>([StockEvent::Restocked { qty: 4 }])
            .ask(Reserve { qty: 4 })
            .then_expect_reply(StockView {
                available: 0,
                version: 2,
            });
        given::<StockItem>([
            StockEvent::Restocked { qty: 4 },
            StockEvent::Reserved { qty: 4 },
        ])
        .ask(Reserve { qty: 1 })
        .then_expect_rejection(StockError::Insufficient {
            available: 0,
            requested: 1,
            version: 2,
        });
    }

    #[test]
    fn zero_quantities_and_overflows_are_rejected() {
        given_no_events::<StockItem>()
            .ask(Reserve { qty: 0 })
            .then_expect_rejection(StockError::ZeroQuantity);
        given_no_events::<StockItem>()
            .ask(Restock { qty: 0 })
            .then_expect_rejection(StockError::ZeroQuantity);
        given::<StockItem>([StockEvent::Restocked { qty: u64::MAX }])
            .ask(Restock { qty: 1 })
            .then_expect_rejection(StockError::Overflow {
                available: u64::MAX,
                qty: 1,
            });
    }

    #[test]
    fn the_query_persists_nothing() {
        given::<StockItem>([StockEvent::Restocked { qty: 9 }])
            .ask(Available)
            .then_expect_no_events()
            .then_expect_reply(StockView {
                available: 9,
                version: 1,
            });
    }

    #[test]
    fn names_carry_no_dash() {
        assert_eq!(<StockItem as Aggregate>::NAME, "stock_item");
        assert_eq!(
            StockEvent::EVENT_TYPES,
            ["stock_item.restocked", "stock_item.reserved"]
        );
    }
}
