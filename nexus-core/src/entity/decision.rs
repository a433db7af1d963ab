//! Deciding a batch: each command in order against the state the previous
//! one left, its events encoded before they are applied.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::builder::Settings;
use super::message::{Decided, Message, panic_message};
use super::persistence::Loaded;
use crate::{Aggregate, CodecError, EventMetadata, NewEvent};

type Boxed<A> = Box<dyn Message<A>>;

/// What a batch decided.
pub(crate) struct Decision<A: Aggregate> {
    /// The batch's events, encoded, in order (event-sourced entities).
    pub(crate) encoded: Vec<NewEvent>,
    /// The same events and their metadata, to encode the very same batch
    /// again when a write's outcome is unknown and it must be re-sent.
    pub(crate) events: Vec<A::Event>,
    pub(crate) metadata: Vec<EventMetadata>,
    /// Per command of the batch, in order: how many events it wrote. Its
    /// events follow those of the commands before it.
    pub(crate) counts: Vec<usize>,
    /// Commands whose events did not encode: answered with the error, their
    /// events neither applied nor written.
    pub(crate) unencodable: Vec<(usize, CodecError)>,
    pub(crate) snapshot_due: bool,
    pub(crate) stop: bool,
}

impl<A: Aggregate> Default for Decision<A> {
    fn default() -> Self {
        Self {
            encoded: Vec::new(),
            events: Vec::new(),
            metadata: Vec::new(),
            counts: Vec::new(),
            unencodable: Vec::new(),
            snapshot_due: false,
            stop: false,
        }
    }
}

impl<A: Aggregate> Decision<A> {
    /// The same decision emptied, its buffers kept: a batch decided with it
    /// allocates only what outgrows the batches before.
    fn cleared(mut self) -> Self {
        self.encoded.clear();
        self.events.clear();
        self.metadata.clear();
        self.counts.clear();
        self.unencodable.clear();
        self.snapshot_due = false;
        self.stop = false;
        self
    }

    /// How many events the batch writes.
    pub(crate) fn events(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// A handler, `apply`, a codec or a reply panicked on the command at
/// `index`; the state may be half-applied.
pub(crate) struct Panicked {
    pub(crate) index: usize,
    pub(crate) message: String,
}

/// Decides every command of the batch in order against `live`. Each
/// accepted command's events are encoded first and, only if they all
/// encode, applied before the next command is decided; a command whose
/// events do not encode is set aside with its error and changes nothing.
pub(crate) fn decide_batch<A: Aggregate>(
    batch: &mut [Boxed<A>],
    live: &mut Loaded<A>,
    settings: &Settings<A>,
    recycled: Decision<A>,
) -> Result<Decision<A>, Panicked> {
    let persistence = &settings.persistence;
    let mut decision = recycled.cleared();
    decision.counts.reserve(batch.len());
    let mut version = live.version;
    for (index, message) in batch.iter_mut().enumerate() {
        let decided = catch_unwind(AssertUnwindSafe(|| {
            let Decided::Accepted { events, stop } = message.decide(&live.state, version) else {
                return Ok(None);
            };
            let start = decision.encoded.len();
            persistence.encode_events(
                events.as_slice(),
                message.options(),
                &mut decision.encoded,
            )?;
            let metadata = decision.encoded[start..].iter().map(|e| e.metadata.clone());
            decision.metadata.extend(metadata);
            for event in events.as_slice() {
                live.state.apply(event);
                version += 1;
                decision.snapshot_due |= persistence.snapshot_due(&live.state, event, version);
            }
            message.prepare_reply(&live.state);
            let count = events.as_slice().len();
            decision.events.extend(events);
            Ok(Some((count, stop)))
        }));
        match decided {
            Ok(Ok(Some((count, stop)))) => {
                decision.counts.push(count);
                decision.stop |= stop;
            }
            Ok(Ok(None)) => decision.counts.push(0),
            Ok(Err(error)) => {
                decision.counts.push(0);
                decision.unencodable.push((index, error));
            }
            Err(panic) => {
                return Err(Panicked {
                    index,
                    message: panic_message(&*panic),
                });
            }
        }
    }
    Ok(decision)
}
