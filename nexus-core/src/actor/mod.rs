//! The actor runtime: the system actors run in, their mailboxes, and
//! plain actors with their refs.

mod actor_ref;
mod behavior;
pub(crate) mod deadlines;
pub(crate) mod mailbox;
pub(crate) mod system;

pub use actor_ref::{ActorRef, AskError, ReplyTo};
pub use behavior::{Actor, ActorOptions};
pub use mailbox::WhenFull;
pub use system::{ActorSystem, ActorSystemBuilder, ShutdownReport};
