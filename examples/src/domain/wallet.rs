//! A wallet holding a balance in integer cents.
//!
//! Amounts are `i64` cents and every sum is checked: a deposit or withdrawal
//! of zero or less, a deposit that would overflow, and a withdrawal beyond
//! the balance are rejections with a typed [`WalletError`] that persist
//! nothing. The balance is never negative.
//!
//! ```
//! use nexus_core::testkit::given;
//! use nexus_examples::domain::wallet::{Wallet, WalletError, WalletEvent, WalletView, Withdraw};
//!
//! given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//!     .ask(Withdraw { amount: 200 })
//!     .then_expect_events([WalletEvent::Withdrawn { amount: 200 }])
//!     .then_expect_reply(WalletView { balance: 300, version: 2 });
//!
//! given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//!     .ask(Withdraw { amount: 501 })
//!     .then_expect_rejection(WalletError::InsufficientFunds { balance: 500, requested: 501 });
//! ```

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// The state of one wallet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    balance: i64,
    version: u64,
}

impl Wallet {
    /// The balance in cents; never negative.
    pub fn balance(&self) -> i64 {
        self.balance
    }

    /// How many events the wallet has applied: its stream's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The balance with the version it is as of.
    pub fn view(&self) -> WalletView {
        WalletView {
            balance: self.balance,
            version: self.version,
        }
    }
}

/// What every wallet command replies: the balance and the stream version
/// it is as of, read from the state right after the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletView {
    /// Cents.
    pub balance: i64,
    /// The stream version (0 for a wallet with no events).
    pub version: u64,
}

/// What happened to a wallet.
/// Projections dispatch over it exhaustively (`WalletEventVisitor`).
///
/// Stored as schema version 2, one flat object per event such as
/// `{"type": "Deposited", "amountCents": 2500}`, so SQL reads the amount
/// as `payload->>'amountCents'`; [`wallet_format`](super::wallet_format)
/// holds the codec that also reads version 1.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    DomainEvent,
    nexus_core::projection::EventVisitor,
)]
#[serde(tag = "type")]
#[event(prefix = "wallet")]
pub enum WalletEvent {
    /// `amount` cents were added.
    #[event(version = 2)]
    Deposited {
        /// Cents, positive.
        #[serde(rename = "amountCents")]
        amount: i64,
    },
    /// `amount` cents were taken out.
    #[event(version = 2)]
    Withdrawn {
        /// Cents, positive and at most the balance at the time.
        #[serde(rename = "amountCents")]
        amount: i64,
    },
}

/// Why a wallet rejected a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WalletError {
    /// Deposits and withdrawals move a positive number of cents.
    #[error("the amount must be positive, got {amount} cents")]
    NonPositiveAmount {
        /// The rejected amount.
        amount: i64,
    },
    /// The balance would not fit in an `i64`.
    #[error("depositing {amount} cents onto {balance} cents overflows the balance")]
    Overflow {
        /// The balance before the deposit.
        balance: i64,
        /// The rejected amount.
        amount: i64,
    },
    /// A withdrawal beyond the balance.
    #[error("insufficient funds: the balance is {balance} cents, {requested} were requested")]
    InsufficientFunds {
        /// The balance at the time.
        balance: i64,
        /// The rejected amount.
        requested: i64,
    },
}

/// Add `amount` cents; replies the new [`WalletView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// Cents, positive.
    pub amount: i64,
}

/// Take out `amount` cents; replies the new [`WalletView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdraw {
    /// Cents, positive.
    pub amount: i64,
}

/// Read the [`WalletView`]; persists nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance;

#[aggregate(
    name = "wallet",
    event = WalletEvent,
    error = WalletError,
    commands(Deposit, Withdraw, Balance)
)]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self, WalletView>, WalletError> {
        let amount = positive(command.amount)?;
        self.balance
            .checked_add(amount)
            .ok_or(WalletError::Overflow {
                balance: self.balance,
                amount,
            })?;
        Ok(Effect::persist(WalletEvent::Deposited { amount }).then_reply(Self::view))
    }

    #[handle]
    fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self, WalletView>, WalletError> {
        let amount = positive(command.amount)?;
        let insufficient = WalletError::InsufficientFunds {
            balance: self.balance,
            requested: amount,
        };
        match self.balance.checked_sub(amount) {
            Some(rest) if rest >= 0 => {
                Ok(Effect::persist(WalletEvent::Withdrawn { amount }).then_reply(Self::view))
            }
            _ => Err(insufficient),
        }
    }

    #[handle]
    fn balance_query(&self, _: &Balance) -> Result<Effect<Self, WalletView>, WalletError> {
        Ok(Effect::none().then_reply(Self::view))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        // The handlers rejected every amount that would leave `0..=i64::MAX`,
        // so the saturation never triggers for events this program wrote.
        self.version += 1;
        match event {
            WalletEvent::Deposited { amount } => {
                self.balance = self.balance.saturating_add(*amount);
            }
            WalletEvent::Withdrawn { amount } => {
                self.balance = self.balance.saturating_sub(*amount);
            }
        }
    }
}

fn positive(amount: i64) -> Result<i64, WalletError> {
    if amount > 0 {
        Ok(amount)
    } else {
        Err(WalletError::NonPositiveAmount { amount })
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::testkit::{given, given_no_events};
    use nexus_core::{Aggregate, DomainEvent};

    use super::*;

    fn funded(cents: i64) -> [WalletEvent; 1] {
        [WalletEvent::Deposited { amount: cents }]
    }

    #[test]
    fn a_deposit_records_the_amount_and_replies_the_new_balance() {
        given::<Wallet>(funded(250))
            .ask(Deposit { amount: 100 })
            .then_expect_events([WalletEvent::Deposited { amount: 100 }])
            .then_expect_reply(WalletView {
                balance: 350,
                version: 2,
            })
            .then_expect_state(|w: &Wallet| assert_eq!(w.balance(), 350));
    }

    #[test]
    fn zero_and_negative_amounts_are_rejected_for_both_directions() {
        for amount in [0, -1, i64::MIN] {
            let rejection = WalletError::NonPositiveAmount { amount };
            given::<Wallet>(funded(10))
                .ask(Deposit { amount })
                .then_expect_rejection(rejection.clone());
            given::<Wallet>(funded(10))
                .ask(Withdraw { amount })
                .then_expect_rejection(rejection);
        }
    }

    #[test]
    fn a_deposit_that_would_overflow_is_rejected_and_one_that_fits_exactly_is_not() {
        given::<Wallet>(funded(i64::MAX - 5))
            .ask(Deposit { amount: 6 })
            .then_expect_rejection(WalletError::Overflow {
                balance: i64::MAX - 5,
                amount: 6,
            });
        given::<Wallet>(funded(i64::MAX - 5))
            .ask(Deposit { amount: 5 })
            .then_expect_reply(WalletView {
                balance: i64::MAX,
                version: 2,
            });
    }

    #[test]
    fn withdrawing_beyond_the_balance_names_the_balance_and_the_request() {
        given::<Wallet>(funded(500))
            .ask(Withdraw { amount: 501 })
            .then_expect_rejection(WalletError::InsufficientFunds {
                balance: 500,
                requested: 501,
            });
        given_no_events::<Wallet>()
            .ask(Withdraw { amount: 1 })
            .then_expect_rejection(WalletError::InsufficientFunds {
                balance: 0,
                requested: 1,
            });
    }

    #[test]
    fn withdrawing_the_whole_balance_leaves_zero() {
        given::<Wallet>(funded(500))
            .ask(Withdraw { amount: 500 })
            .then_expect_events([WalletEvent::Withdrawn { amount: 500 }])
            .then_expect_reply(WalletView {
                balance: 0,
                version: 2,
            });
    }

    #[test]
    fn the_balance_query_persists_nothing_and_replies_the_balance() {
        given::<Wallet>([
            WalletEvent::Deposited { amount: 700 },
            WalletEvent::Withdrawn { amount: 200 },
        ])
        .ask(Balance)
        .then_expect_no_events()
        .then_expect_reply(WalletView {
            balance: 500,
            version: 2,
        });
    }

    #[test]
    fn random_command_sequences_match_a_model_in_wide_integers() {
        // Amounts span tiny, huge and invalid values, so the overflow and
        // insufficient-funds edges are hit often; the model uses i128.
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for _ in 0..50 {
            let mut history: Vec<WalletEvent> = Vec::new();
            let mut model: i128 = 0;
            for _ in 0..40 {
                let amount = match rng.u8(0..4) {
                    0 => rng.i64(-3..=3),
                    1 => rng.i64(1..=1_000),
                    2 => i64::MAX - rng.i64(0..=1_000),
                    _ => rng.i64(..),
                };
                let deposit = rng.bool();
                let outcome = if deposit {
                    given::<Wallet>(history.clone()).when(Deposit { amount })
                } else {
                    given::<Wallet>(history.clone()).when(Withdraw { amount })
                };
                let expected_ok = amount > 0
                    && if deposit {
                        model + i128::from(amount) <= i128::from(i64::MAX)
                    } else {
                        i128::from(amount) <= model
                    };
                match outcome.events() {
                    Ok(events) => {
                        assert!(
                            expected_ok,
                            "accepted {amount} (deposit: {deposit}) on {model}"
                        );
                        history.extend_from_slice(events);
                        model += if deposit { 1 } else { -1 } * i128::from(amount);
                    }
                    Err(error) => assert!(!expected_ok, "rejected {amount} on {model}: {error}"),
                }
                let state = nexus_core::fold(Wallet::default(), &history);
                assert_eq!(i128::from(state.balance()), model);
            }
        }
    }

    #[test]
    fn events_carry_stable_prefixed_names() {
        assert_eq!(
            WalletEvent::EVENT_TYPES,
            ["wallet.deposited", "wallet.withdrawn"]
        );
        assert_eq!(<Wallet as Aggregate>::NAME, "wallet");
    }

    #[test]
    fn the_state_round_trips_through_serde_for_snapshots_and_durable_state() {
        let state = nexus_core::fold(Wallet::default(), &funded(42));
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<Wallet>(&json).unwrap(), state);
    }
}
