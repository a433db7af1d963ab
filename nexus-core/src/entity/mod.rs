//! Entities: one actor per aggregate identity, hosting its event-sourced or
//! durable-state behavior.
//!
//! [`Entities`] is the factory of refs for one aggregate type,
//! [`EntityRef`] the address of one entity, [`EntitiesBuilder`] its options.

mod builder;
mod catch_panic;
mod command_options;
mod decision;
mod entities;
mod entity_ref;
mod error;
mod fanout;
mod held_cell;
mod message;
mod persistence;
pub(crate) mod registry;
mod runner;
mod supervision;

pub use builder::{ConfigError, EntitiesBuilder};
pub use command_options::{CommandOptions, Outcome};
pub use entities::Entities;
pub use entity_ref::EntityRef;
pub use error::{EntityError, SendError};
pub use persistence::ReplayPolicy;
pub use supervision::Supervision;
