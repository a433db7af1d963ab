//! The matrix's aggregate: a journal whose one command writes a chosen
//! number of same-sized events in one append.

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

/// The note every event carries: about the size of a small business
/// event's payload (a few ids, an amount, a timestamp).
pub const NOTE: &str = "reserved seat 17 in row F for order 6f1c2a90-3b7e-4d21-9a55-0c8e1d2f4b63 at 19.50 EUR, 2026-12-01T14:00Z";

/// How many entries the journal holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Journal {
    /// Entries written so far.
    pub entries: u64,
}

/// What a [`Journal`] records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "journal")]
pub enum JournalEvent {
    /// One entry, with its note.
    Noted(String),
}

/// Why a [`Journal`] refused a command.
#[derive(Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum JournalError {
    /// A write of no entries writes nothing.
    #[error("a note writes at least one entry")]
    Empty,
}

/// Writes this many entries, atomically; replies the journal's size.
#[derive(Debug, Serialize, Deserialize)]
pub struct Note(pub usize);

#[aggregate(name = "journal", event = JournalEvent, error = JournalError, commands(Note))]
impl Journal {
    #[handle]
    fn note(&self, Note(entries): &Note) -> Result<Effect<Self, u64>, JournalError> {
        if *entries == 0 {
            return Err(JournalError::Empty);
        }
        let events = vec![JournalEvent::Noted(NOTE.to_owned()); *entries];
        Ok(Effect::persist_all(events).then_reply(|s: &Self| s.entries))
    }

    #[apply]
    fn apply(&mut self, event: &JournalEvent) {
        match event {
            JournalEvent::Noted(_) => self.entries += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::testkit::given;

    use super::*;

    #[test]
    fn a_note_writes_as_many_entries_as_asked() {
        given::<Journal>([JournalEvent::Noted(NOTE.to_owned())])
            .ask(Note(3))
            .then_expect_events(vec![JournalEvent::Noted(NOTE.to_owned()); 3])
            .then_expect_reply(4);
    }

    #[test]
    fn an_empty_note_is_refused() {
        given::<Journal>([])
            .ask(Note(0))
            .then_expect_rejection(JournalError::Empty);
    }
}
