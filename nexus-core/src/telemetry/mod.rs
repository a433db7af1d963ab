//! Observability: the metrics the runtime records through the [`metrics`]
//! facade and the spans it opens through [`tracing`].
//!
//! The library installs no recorder and no subscriber; the application
//! picks them (the wallet app serves Prometheus' text format at `/metrics`).
//! Metric names are in [`names`]. An aggregate's metrics are bound to the
//! recorder in effect when its [`Entities`](crate::Entities) is built (a
//! projection's when it is spawned): install the recorder first, or build
//! inside [`metrics::with_local_recorder`] to scope them (what tests do,
//! with [`InMemoryRecorder`]). With no recorder, every handle is a no-op
//! and nothing is looked up per command.
//!
//! Spans (low-cardinality names; ids are fields):
//!
//! | span | fields | when |
//! | --- | --- | --- |
//! | `nexus.command` | `aggregate`, `stream`, `command_id`, `correlation_id`, `batch`, `version`, `outcome` | one per command, from its send to its answer; its parent is the caller's span (it is opened in the caller's task and carried in the message) |
//! | `nexus.recovery` | `aggregate`, `stream`, `events`, `from_snapshot`, `version` | an entity loading its state; child of the command that woke it |
//! | `nexus.append` | `aggregate`, `stream`, `rows`, `commands`, `expected`, `duration_ms` | one batch's write; child of the batch's first command, the others link to it (`follows_from`) |
//! | `nexus.lease.acquire` | `aggregate`, `stream`, `shard`, `epoch` | an entity taking its lease; a lost lease is a `warn` event in the entity's span |
//! | `nexus.projection.batch` | `projection`, `events`, `from`, `through`, `correlation_id` | one delivered batch; each event is a `debug` event with its `event_id`, `correlation_id`, `causation_id` and `traceparent` header, which tie it back to its command |

mod entity;
pub mod lease;
pub mod names;
mod projection;
mod recorder;

pub(crate) use entity::{CommandOutcome, EntityMetrics};
pub(crate) use projection::ProjectionMetrics;
pub use recorder::InMemoryRecorder;
