//! An order that moves through a small state machine:
//!
//! ```text
//! (new) ──place──► placed ──pay──► paid ──ship──► shipped
//!                    │               │
//!                    └────cancel─────┴──► cancelled
//! ```
//!
//! Every other command in a state is rejected with
//! [`OrderError::InvalidTransition`], naming the command and the state, and
//! persists nothing. Its events name themselves (`#[event(require_names)]`),
//! so renaming a variant can never rename stored events.
//!
//! ```
//! use nexus_core::testkit::given;
//! use nexus_examples::domain::order::{Cancel, Order, OrderError, OrderEvent, OrderStatus};
//!
//! given::<Order>([
//!     OrderEvent::Placed { total: 1_000 },
//!     OrderEvent::Paid { amount: 1_000 },
//!     OrderEvent::Shipped { tracking: "TRK-1".into() },
//! ])
//! .ask(Cancel { reason: "changed my mind".into() })
//! .then_expect_rejection(OrderError::InvalidTransition {
//!     command: "cancel",
//!     status: OrderStatus::Shipped,
//! });
//! ```

use std::fmt;

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Not placed yet.
    #[default]
    New,
    /// Placed, waiting for payment.
    Placed,
    /// Paid, waiting for shipping.
    Paid,
    /// Shipped: final.
    Shipped,
    /// Cancelled before shipping: final.
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::New => "new",
            Self::Placed => "placed",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Cancelled => "cancelled",
        })
    }
}

/// The state of one order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    status: OrderStatus,
    total: i64,
    tracking: Option<String>,
}

impl Order {
    /// Where the order is.
    pub fn status(&self) -> OrderStatus {
        self.status
    }

    /// What the order costs, in cents (0 before it is placed).
    pub fn total(&self) -> i64 {
        self.total
    }

    /// The parcel's tracking code, once shipped.
    pub fn tracking(&self) -> Option<&str> {
        self.tracking.as_deref()
    }

    fn transition(&self, command: &'static str, from: &[OrderStatus]) -> Result<(), OrderError> {
        if from.contains(&self.status) {
            Ok(())
        } else {
            Err(OrderError::InvalidTransition {
                command,
                status: self.status,
            })
        }
    }
}

/// What happened to an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
#[event(require_names)]
pub enum OrderEvent {
    /// The order was placed for `total` cents.
    #[event(name = "order.placed")]
    Placed {
        /// Cents, positive.
        total: i64,
    },
    /// The order was paid in full.
    #[event(name = "order.paid")]
    Paid {
        /// Cents, equal to the total.
        amount: i64,
    },
    /// The order left the warehouse.
    #[event(name = "order.shipped")]
    Shipped {
        /// The carrier's tracking code.
        tracking: String,
    },
    /// The order was cancelled before shipping.
    #[event(name = "order.cancelled")]
    Cancelled {
        /// Why, as the customer said.
        reason: String,
    },
}

/// Why an order rejected a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The command does not apply in the current state.
    #[error("cannot {command} an order that is {status}")]
    InvalidTransition {
        /// The rejected command.
        command: &'static str,
        /// The state it was sent in.
        status: OrderStatus,
    },
    /// An order costs a positive number of cents.
    #[error("an order's total must be positive, got {total} cents")]
    InvalidTotal {
        /// The rejected total.
        total: i64,
    },
    /// A payment pays the total exactly.
    #[error("the order costs {expected} cents, the payment was {paid}")]
    WrongAmount {
        /// The order's total.
        expected: i64,
        /// The rejected payment.
        paid: i64,
    },
    /// A shipment needs a tracking code.
    #[error("a shipment needs a tracking code")]
    MissingTracking,
}

/// Place the order; replies nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// Cents, positive.
    pub total: i64,
}

/// Pay the order in full; replies nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pay {
    /// Cents, equal to the total.
    pub amount: i64,
}

/// Ship the paid order; replies nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ship {
    /// The carrier's tracking code.
    pub tracking: String,
}

/// Cancel the order before it ships; replies nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// Why.
    pub reason: String,
}

/// Read where the order is; persists nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status;

#[aggregate(
    name = "order",
    event = OrderEvent,
    error = OrderError,
    commands(Place, Pay, Ship, Cancel, Status)
)]
impl Order {
    #[handle]
    fn place(&self, command: &Place) -> Result<Effect<Self>, OrderError> {
        self.transition("place", &[OrderStatus::New])?;
        if command.total <= 0 {
            return Err(OrderError::InvalidTotal {
                total: command.total,
            });
        }
        Ok(Effect::persist(OrderEvent::Placed {
            total: command.total,
        }))
    }

    #[handle]
    fn pay(&self, command: &Pay) -> Result<Effect<Self>, OrderError> {
        self.transition("pay", &[OrderStatus::Placed])?;
        if command.amount != self.total {
            return Err(OrderError::WrongAmount {
                expected: self.total,
                paid: command.amount,
            });
        }
        Ok(Effect::persist(OrderEvent::Paid {
            amount: command.amount,
        }))
    }

    #[handle]
    fn ship(&self, command: &Ship) -> Result<Effect<Self>, OrderError> {
        self.transition("ship", &[OrderStatus::Paid])?;
        if command.tracking.trim().is_empty() {
            return Err(OrderError::MissingTracking);
        }
        Ok(Effect::persist(OrderEvent::Shipped {
            tracking: command.tracking.clone(),
        }))
    }

    #[handle]
    fn cancel(&self, command: &Cancel) -> Result<Effect<Self>, OrderError> {
        self.transition("cancel", &[OrderStatus::Placed, OrderStatus::Paid])?;
        Ok(Effect::persist(OrderEvent::Cancelled {
            reason: command.reason.clone(),
        }))
    }

    #[handle]
    fn status_query(&self, _: &Status) -> Result<Effect<Self, OrderStatus>, OrderError> {
        Ok(Effect::none().then_reply(Self::status))
    }

    #[apply]
    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::Placed { total } => {
                self.status = OrderStatus::Placed;
                self.total = *total;
            }
            OrderEvent::Paid { .. } => self.status = OrderStatus::Paid,
            OrderEvent::Shipped { tracking } => {
                self.status = OrderStatus::Shipped;
                self.tracking = Some(tracking.clone());
            }
            OrderEvent::Cancelled { .. } => self.status = OrderStatus::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::testkit::{given, given_no_events};
    use nexus_core::{Aggregate, DomainEvent};

    use super::*;

    const PLACED: OrderEvent = OrderEvent::Placed { total: 1_000 };
    const PAID: OrderEvent = OrderEvent::Paid { amount: 1_000 };

    fn shipped() -> OrderEvent {
        OrderEvent::Shipped {
            tracking: "TRK-1".into(),
        }
    }

    fn cancelled() -> OrderEvent {
        OrderEvent::Cancelled {
            reason: "late".into(),
        }
    }

    /// The history that leads to each state.
    fn history(status: OrderStatus) -> Vec<OrderEvent> {
        match status {
            OrderStatus::New => vec![],
            OrderStatus::Placed => vec![PLACED],
            OrderStatus::Paid => vec![PLACED, PAID],
            OrderStatus::Shipped => vec![PLACED, PAID, shipped()],
            OrderStatus::Cancelled => vec![PLACED, cancelled()],
        }
    }

    const ALL: [OrderStatus; 5] = [
        OrderStatus::New,
        OrderStatus::Placed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Cancelled,
    ];

    #[test]
    fn the_happy_path_places_pays_and_ships() {
        given_no_events::<Order>()
            .ask(Place { total: 1_000 })
            .then_expect_events([PLACED]);
        given::<Order>([PLACED])
            .ask(Pay { amount: 1_000 })
            .then_expect_events([PAID]);
        given::<Order>([PLACED, PAID])
            .ask(Ship {
                tracking: "TRK-1".into(),
            })
            .then_expect_events([shipped()])
            .then_expect_state(|order: &Order| {
                assert_eq!(order.status(), OrderStatus::Shipped);
                assert_eq!(order.tracking(), Some("TRK-1"));
                assert_eq!(order.total(), 1_000);
            });
    }

    #[test]
    fn every_command_is_accepted_exactly_in_the_states_of_the_diagram() {
        let commands: [(&str, &[OrderStatus], OrderCommand); 4] = [
            ("place", &[OrderStatus::New], Place { total: 1_000 }.into()),
            ("pay", &[OrderStatus::Placed], Pay { amount: 1_000 }.into()),
            (
                "ship",
                &[OrderStatus::Paid],
                Ship {
                    tracking: "T".into(),
                }
                .into(),
            ),
            (
                "cancel",
                &[OrderStatus::Placed, OrderStatus::Paid],
                Cancel { reason: "r".into() }.into(),
            ),
        ];
        for (name, accepted_in, command) in &commands {
            for status in ALL {
                let state = nexus_core::fold(Order::default(), &history(status));
                assert_eq!(state.status(), status);
                let decided = state.handle(command);
                if accepted_in.contains(&status) {
                    assert_eq!(
                        decided.map(|e| e.events().len()).ok(),
                        Some(1),
                        "{name} in {status}"
                    );
                } else {
                    assert_eq!(
                        decided.err(),
                        Some(OrderError::InvalidTransition {
                            command: name,
                            status
                        }),
                        "{name} in {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn cancelling_after_shipping_is_rejected_naming_the_state() {
        given::<Order>(history(OrderStatus::Shipped))
            .ask(Cancel {
                reason: "too late".into(),
            })
            .then_expect_rejection(OrderError::InvalidTransition {
                command: "cancel",
                status: OrderStatus::Shipped,
            });
    }

    #[test]
    fn a_paid_order_can_still_be_cancelled() {
        given::<Order>([PLACED, PAID])
            .ask(Cancel {
                reason: "late".into(),
            })
            .then_expect_events([cancelled()])
            .then_expect_state(|order: &Order| assert_eq!(order.status(), OrderStatus::Cancelled));
    }

    #[test]
    fn totals_payments_and_tracking_codes_are_validated() {
        given_no_events::<Order>()
            .ask(Place { total: 0 })
            .then_expect_rejection(OrderError::InvalidTotal { total: 0 });
        given::<Order>([PLACED])
            .ask(Pay { amount: 999 })
            .then_expect_rejection(OrderError::WrongAmount {
                expected: 1_000,
                paid: 999,
            });
        given::<Order>([PLACED, PAID])
            .ask(Ship {
                tracking: "  ".into(),
            })
            .then_expect_rejection(OrderError::MissingTracking);
    }

    #[test]
    fn the_status_query_persists_nothing() {
        for status in ALL {
            given::<Order>(history(status))
                .ask(Status)
                .then_expect_no_events()
                .then_expect_reply(status);
        }
    }

    #[test]
    fn events_carry_their_explicit_names() {
        assert_eq!(
            OrderEvent::EVENT_TYPES,
            [
                "order.placed",
                "order.paid",
                "order.shipped",
                "order.cancelled"
            ]
        );
        assert_eq!(cancelled().event_type(), "order.cancelled");
        assert_eq!(<Order as Aggregate>::NAME, "order");
    }

    #[test]
    fn the_state_round_trips_through_serde() {
        let state = nexus_core::fold(Order::default(), &history(OrderStatus::Shipped));
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<Order>(&json).unwrap(), state);
    }
}
