//! The actor runtime: the system actors run in, and their mailboxes.

pub(crate) mod mailbox;
pub(crate) mod system;

pub use mailbox::WhenFull;
pub use system::{ActorSystem, ActorSystemBuilder, ShutdownReport};
