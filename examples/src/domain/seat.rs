//! A seat that at most one buyer holds at a time.
//!
//! Reserving a seat someone else holds is rejected with the holder's name;
//! reserving it again as its holder is accepted and changes nothing, so a
//! retried request is harmless. Only the holder releases it.
//!
//! ```
//! use nexus_core::testkit::given;
//! use nexus_examples::domain::seat::{Reserve, Seat, SeatError, SeatEvent};
//!
//! given::<Seat>([SeatEvent::Reserved { buyer: "ada".into() }])
//!     .ask(Reserve { buyer: "bob".into() })
//!     .then_expect_rejection(SeatError::AlreadyReserved { holder: "ada".into() });
//! ```

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// The state of one seat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    holder: Option<String>,
}

impl Seat {
    /// Who holds the seat, if anyone.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }
}

/// What happened to a seat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "seat")]
pub enum SeatEvent {
    /// `buyer` now holds the seat.
    Reserved {
        /// The new holder.
        buyer: String,
    },
    /// `buyer` gave the seat up.
    Released {
        /// The former holder.
        buyer: String,
    },
}

/// Why a seat rejected a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeatError {
    /// Someone else holds the seat.
    #[error("the seat is already reserved by {holder}")]
    AlreadyReserved {
        /// Who holds it.
        holder: String,
    },
    /// Nobody holds the seat.
    #[error("the seat is not reserved, so {buyer} cannot release it")]
    NotReserved {
        /// Who tried to release it.
        buyer: String,
    },
    /// A buyer tried to release a seat someone else holds.
    #[error("the seat is reserved by {holder}, not by {buyer}")]
    HeldByAnother {
        /// Who holds it.
        holder: String,
        /// Who tried to release it.
        buyer: String,
    },
    /// A buyer needs a name.
    #[error("the buyer's name is empty")]
    EmptyBuyer,
}

/// Hold the seat for `buyer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserve {
    /// Who reserves.
    pub buyer: String,
}

/// Give the seat up; only its holder may.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Who releases.
    pub buyer: String,
}

/// Read who holds the seat; persists nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder;

#[aggregate(
    name = "seat",
    event = SeatEvent,
    error = SeatError,
    commands(Reserve, Release, Holder)
)]
impl Seat {
    #[handle]
    fn reserve(&self, command: &Reserve) -> Result<Effect<Self>, SeatError> {
        if command.buyer.is_empty() {
            return Err(SeatError::EmptyBuyer);
        }
        match &self.holder {
            None => Ok(Effect::persist(SeatEvent::Reserved {
                buyer: command.buyer.clone(),
            })),
            Some(holder) if *holder == command.buyer => Ok(Effect::none()),
            Some(holder) => Err(SeatError::AlreadyReserved {
                holder: holder.clone(),
            }),
        }
    }

    #[handle]
    fn release(&self, command: &Release) -> Result<Effect<Self>, SeatError> {
        match &self.holder {
            Some(holder) if *holder == command.buyer => Ok(Effect::persist(SeatEvent::Released {
                buyer: command.buyer.clone(),
            })),
            Some(holder) => Err(SeatError::HeldByAnother {
                holder: holder.clone(),
                buyer: command.buyer.clone(),
            }),
            None => Err(SeatError::NotReserved {
                buyer: command.buyer.clone(),
            }),
        }
    }

    #[handle]
    fn holder_query(&self, _: &Holder) -> Result<Effect<Self, Option<String>>, SeatError> {
        Ok(Effect::none().then_reply(|seat: &Self| seat.holder.clone()))
    }

    #[apply]
    fn apply(&mut self, event: &SeatEvent) {
        self.holder = match event {
            SeatEvent::Reserved { buyer } => Some(buyer.clone()),
            SeatEvent::Released { .. } => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::testkit::{given, given_no_events};

    use super::*;

    fn held_by(buyer: &str) -> [SeatEvent; 1] {
        [SeatEvent::Reserved {
            buyer: buyer.into(),
        }]
    }

    fn reserve(buyer: &str) -> Reserve {
        Reserve {
            buyer: buyer.into(),
        }
    }

    fn release(buyer: &str) -> Release {
        Release {
            buyer: buyer.into(),
        }
    }

    #[test]
    fn a_free_seat_is_reserved_by_the_first_buyer() {
        given_no_events::<Seat>()
            .ask(reserve("ada"))
            .then_expect_events([SeatEvent::Reserved {
                buyer: "ada".into(),
            }])
            .then_expect_state(|seat: &Seat| assert_eq!(seat.holder(), Some("ada")));
    }

    #[test]
    fn a_held_seat_rejects_another_buyer_naming_the_holder() {
        given::<Seat>(held_by("ada"))
            .ask(reserve("bob"))
            .then_expect_rejection(SeatError::AlreadyReserved {
                holder: "ada".into(),
            });
    }

    #[test]
    fn reserving_again_as_the_holder_changes_nothing() {
        given::<Seat>(held_by("ada"))
            .ask(reserve("ada"))
            .then_expect_no_events()
            .then_expect_state(|seat: &Seat| assert_eq!(seat.holder(), Some("ada")));
    }

    #[test]
    fn a_buyer_needs_a_name() {
        given_no_events::<Seat>()
            .ask(reserve(""))
            .then_expect_rejection(SeatError::EmptyBuyer);
    }

    #[test]
    fn only_the_holder_releases_and_the_seat_is_free_again() {
        given::<Seat>(held_by("ada"))
            .ask(release("bob"))
            .then_expect_rejection(SeatError::HeldByAnother {
                holder: "ada".into(),
                buyer: "bob".into(),
            });
        given::<Seat>(held_by("ada"))
            .ask(release("ada"))
            .then_expect_events([SeatEvent::Released {
                buyer: "ada".into(),
            }])
            .then_expect_state(|seat: &Seat| assert_eq!(seat.holder(), None));
        given_no_events::<Seat>()
            .ask(release("ada"))
            .then_expect_rejection(SeatError::NotReserved {
                buyer: "ada".into(),
            });
    }

    #[test]
    fn a_released_seat_can_be_reserved_by_someone_else() {
        given::<Seat>([
            SeatEvent::Reserved {
                buyer: "ada".into(),
            },
            SeatEvent::Released {
                buyer: "ada".into(),
            },
        ])
        .ask(reserve("bob"))
        .then_expect_events([SeatEvent::Reserved {
            buyer: "bob".into(),
        }]);
    }

    #[test]
    fn the_holder_query_persists_nothing() {
        given::<Seat>(held_by("ada"))
            .ask(Holder)
            .then_expect_no_events()
            .then_expect_reply(Some("ada".to_owned()));
        given_no_events::<Seat>()
            .ask(Holder)
            .then_expect_reply(None);
    }

    #[test]
    fn many_buyers_in_any_order_leave_at_most_one_holder() {
        // Whatever order the mailbox delivers reservations in, the first one
        // wins and every later one is rejected naming that first buyer.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100 {
            let mut buyers: Vec<String> = (0..8).map(|i| format!("buyer-{i}")).collect();
            rng.shuffle(&mut buyers);
            let mut history = Vec::new();
            for buyer in &buyers {
                let outcome = given::<Seat>(history.clone()).when(reserve(buyer));
                match outcome.events() {
                    Ok(events) => history.extend_from_slice(events),
                    Err(error) => assert_eq!(
                        *error,
                        SeatError::AlreadyReserved {
                            holder: buyers[0].clone()
                        }
                    ),
                }
            }
            assert_eq!(
                history,
                [SeatEvent::Reserved {
                    buyer: buyers[0].clone()
                }]
            );
        }
    }
}
