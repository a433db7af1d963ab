//! The ledger: the same money as the wallet, kept as durable state.
//!
//! One row per owner holds the net balance and the entries recorded so far;
//! each command rewrites the row under its version, so the entries and the
//! net they add up to are always written together.
//!
//! ```
//! use nexus_core::testkit::given_no_events;
//! use nexus_examples::wallet_app::ledger::{Ledger, LedgerError, LedgerKind, Record};
//!
//! given_no_events::<Ledger>()
//!     .ask(Record { kind: LedgerKind::Withdraw, amount_cents: 5, description: String::new() })
//!     .then_expect_rejection(LedgerError::InsufficientFunds { net_cents: 0, requested_cents: 5 });
//! ```

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// The longest description a ledger entry keeps.
pub const MAX_DESCRIPTION: usize = 500;

/// Which way money moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// Money in.
    Deposit,
    /// Money out.
    Withdraw,
}

/// One recorded movement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// Which way.
    pub kind: LedgerKind,
    /// Cents, positive.
    pub amount_cents: i64,
    /// Free text.
    pub description: String,
}

/// The ledger row of one owner. Serialised in camelCase, so the admin query
/// reads `netCents` from the stored JSON with plain SQL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// Deposits minus withdrawals, in cents; never negative.
    pub net_cents: i64,
    /// Every entry, oldest first.
    pub entries: Vec<LedgerEntry>,
}

/// What happened to a ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "ledger")]
pub enum LedgerEvent {
    /// An entry was recorded.
    Recorded(LedgerEntry),
}

/// Why a ledger refused an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LedgerError {
    /// Amounts are positive.
    #[error("the amount must be positive, got {amount_cents} cents")]
    NonPositiveAmount {
        /// The rejected amount.
        amount_cents: i64,
    },
    /// The net would not fit in an `i64`.
    #[error("recording {amount_cents} cents onto {net_cents} cents overflows the net balance")]
    Overflow {
        /// The net before.
        net_cents: i64,
        /// The rejected amount.
        amount_cents: i64,
    },
    /// A withdrawal beyond the net balance.
    #[error("insufficient funds: the net is {net_cents} cents, {requested_cents} were requested")]
    InsufficientFunds {
        /// The net at the time.
        net_cents: i64,
        /// The rejected amount.
        requested_cents: i64,
    },
    /// The description is too long.
    #[error("the description has {chars} characters; at most {MAX_DESCRIPTION} are kept")]
    DescriptionTooLong {
        /// Its length in characters.
        chars: usize,
    },
}

/// Record one entry; replies the ledger as it is after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Which way.
    pub kind: LedgerKind,
    /// Cents, positive.
    pub amount_cents: i64,
    /// Free text, at most [`MAX_DESCRIPTION`] characters.
    pub description: String,
}

/// Read the ledger; persists nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement;

#[aggregate(name = "ledger", event = LedgerEvent, error = LedgerError, commands(Record, Statement))]
impl Ledger {
    #[handle]
    fn record(&self, command: &Record) -> Result<Effect<Self, Ledger>, LedgerError> {
        let amount = command.amount_cents;
        if amount <= 0 {
            return Err(LedgerError::NonPositiveAmount {
                amount_cents: amount,
            });
        }
        let chars = command.description.chars().count();
        if chars > MAX_DESCRIPTION {
            return Err(LedgerError::DescriptionTooLong { chars });
        }
        match command.kind {
            LedgerKind::Deposit => {
                self.net_cents
                    .checked_add(amount)
                    .ok_or(LedgerError::Overflow {
                        net_cents: self.net_cents,
                        amount_cents: amount,
                    })?;
            }
            LedgerKind::Withdraw if amount > self.net_cents => {
                return Err(LedgerError::InsufficientFunds {
                    net_cents: self.net_cents,
                    requested_cents: amount,
                });
            }
            LedgerKind::Withdraw => {}
        }
        let entry = LedgerEntry {
            kind: command.kind,
            amount_cents: amount,
            description: command.description.clone(),
        };
        Ok(Effect::persist(LedgerEvent::Recorded(entry)).then_reply(Ledger::clone))
    }

    #[handle]
    fn statement(&self, _: &Statement) -> Result<Effect<Self, Ledger>, LedgerError> {
        Ok(Effect::none().then_reply(Ledger::clone))
    }

    #[apply]
    fn apply(&mut self, event: &LedgerEvent) {
        let LedgerEvent::Recorded(entry) = event;
        // The handler refused every amount that would leave `0..=i64::MAX`.
        self.net_cents = match entry.kind {
            LedgerKind::Deposit => self.net_cents.saturating_add(entry.amount_cents),
            LedgerKind::Withdraw => self.net_cents.saturating_sub(entry.amount_cents),
        };
        self.entries.push(entry.clone());
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::testkit::{given, given_no_events};

    use super::*;

    fn record(kind: LedgerKind, amount_cents: i64) -> Record {
        Record {
            kind,
            amount_cents,
            description: "test".to_owned(),
        }
    }

    fn entry(kind: LedgerKind, amount_cents: i64) -> LedgerEntry {
        LedgerEntry {
            kind,
            amount_cents,
            description: "test".to_owned(),
        }
    }

    #[test]
    fn entries_add_up_to_the_net() {
        given::<Ledger>([LedgerEvent::Recorded(entry(LedgerKind::Deposit, 500))])
            .ask(record(LedgerKind::Withdraw, 200))
            .then_expect_events([LedgerEvent::Recorded(entry(LedgerKind::Withdraw, 200))])
            .then_expect_reply(Ledger {
                net_cents: 300,
                entries: vec![
                    entry(LedgerKind::Deposit, 500),
                    entry(LedgerKind::Withdraw, 200),
                ],
            });
    }

    #[test]
    fn bad_entries_are_refused_and_persist_nothing() {
        for amount_cents in [0, -5] {
            given_no_events::<Ledger>()
                .ask(record(LedgerKind::Deposit, amount_cents))
                .then_expect_rejection(LedgerError::NonPositiveAmount { amount_cents });
        }
        given::<Ledger>([LedgerEvent::Recorded(entry(LedgerKind::Deposit, i64::MAX))])
            .ask(record(LedgerKind::Deposit, 1))
            .then_expect_rejection(LedgerError::Overflow {
                net_cents: i64::MAX,
                amount_cents: 1,
            });
        let long = Record {
            description: "x".repeat(MAX_DESCRIPTION + 1),
            ..record(LedgerKind::Deposit, 1)
        };
        given_no_events::<Ledger>().ask(long).then_expect_rejection(
            LedgerError::DescriptionTooLong {
                chars: MAX_DESCRIPTION + 1,
            },
        );
    }

    #[test]
    fn the_row_is_camel_case_json_so_sql_can_read_the_net() {
        let ledger = nexus_core::fold(
            Ledger::default(),
            &[LedgerEvent::Recorded(entry(LedgerKind::Deposit, 7))],
        );
        let json = serde_json::to_value(&ledger).unwrap();
        assert_eq!(json["netCents"], 7);
        assert_eq!(json["entries"][0]["amountCents"], 7);
    }
}
