//! How an aggregate's commands, replies and errors cross the network.
//!
//! `#[aggregate]` implements [`RemoteCommands<W>`] for every aggregate and
//! every codec `W` that can encode all of its commands, all of their
//! replies and its error, so nothing is asked of an aggregate that stays in
//! one process; an aggregate served by a cluster must be a
//! `RemoteCommands<W>`, and one whose command is not a serde type fails to
//! compile there, saying which type to derive `Serialize`/`Deserialize` for
//! ([`assert_remote`] states the same bound).
//!
//! A forwarded ask is a [`WireAsk`] (the command as a [`WireCommand`], with
//! the caller's [`CommandOptions`]); the owner answers
//! a [`WireAnswer`]: the encoded reply, or the error as a
//! [`WireEntityError`], which reads back as the same [`EntityError`] variant
//! a local caller gets.
//!
//! ```
//! use std::sync::Arc;
//! use nexus_core::codec::{EventCodec, Json};
//! use nexus_core::remote::{RemoteCommands, WireAnswer};
//! use nexus_core::store::memory::InMemoryEventStore;
//! use nexus_core::{ActorSystem, CommandOptions, Entities};
//! # use nexus_core::testkit::doc::{Add, Counter};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let system = ActorSystem::new();
//! let counters = Entities::<Counter>::builder(&system)
//!     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
//!     .build()
//!     .unwrap();
//! // The caller's node encodes the command…
//! let wire = Counter::encode_command(&Json, &Add(2)).unwrap();
//! // …the owner serves it and encodes the answer…
//! let served = Counter::serve(&Json, &wire, &counters.of("c"), CommandOptions::new()).await;
//! let answer = WireAnswer::served::<Counter, _>(served, &Json).to_bytes().unwrap();
//! // …and the caller reads the typed reply.
//! let outcome = WireAnswer::from_bytes(&answer).unwrap().into_served::<Counter, _>(&Json).unwrap();
//! let reply = Counter::decode_reply(&Json, &wire.tag, &outcome.reply).unwrap();
//! assert_eq!(*reply.downcast::<u64>().unwrap(), 2);
//! # });
//! ```

mod wire_ask;
mod wire_error;

pub use wire_ask::{WireAnswer, WireAsk, WireCommand};
pub use wire_error::{
    RemoteSource, WireCodecError, WireEntityError, WireLeaseError, WireRecoveryError,
    WireStoreError, from_wire, to_wire,
};

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use crate::codec::Codec;
use crate::{Aggregate, CodecError, CommandOptions, EntityError, EntityRef, Handles, Outcome};

/// An aggregate whose commands can be sent to another node with the codec
/// `W`: each command encodes with a tag, is served there by the entity, and
/// its reply comes back.
///
/// `#[aggregate]` implements it for every codec that is a
/// [`PayloadCodec`](crate::codec::PayloadCodec) of every command, every
/// reply and the error: with [`Json`](crate::codec::Json) and
/// [`Bincode`](crate::codec::Bincode), when all of them derive
/// `serde::Serialize` and `serde::Deserialize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross the wire with the codec `{W}`",
    label = "`{Self}`'s commands, replies or error are not serde types",
    note = "derive `serde::Serialize` and `serde::Deserialize` for every command of `{Self}`, every reply type of its handlers and its error type; `#[aggregate]` then implements `RemoteCommands<{W}>`"
)]
pub trait RemoteCommands<W: Codec>: Aggregate {
    /// The wire tag and bytes of `command`, which must be one of `Self`'s
    /// commands (found by downcast).
    ///
    /// Fails when the command does not encode, or is not a command of
    /// `Self`.
    fn encode_command(codec: &W, command: &(dyn Any + Send)) -> Result<WireCommand, CodecError>;

    /// Decodes the command of `wire.tag`, sends it to `entity` with
    /// [`EntityRef::ask_with`]`(command, options)` and encodes the reply:
    /// the outcome with the reply's bytes, or the entity's error as it is.
    ///
    /// A command that does not decode (or an unknown tag) is
    /// [`EntityError::Encode`]: nothing was sent to the entity. A reply that
    /// does not encode is [`EntityError::Undeliverable`]: the command was
    /// applied.
    #[allow(clippy::type_complexity)] // Spelled out, as `EntityRef::ask_with` does.
    fn serve<'a>(
        codec: &'a W,
        wire: &'a WireCommand,
        entity: &'a EntityRef<Self>,
        options: CommandOptions,
    ) -> Pin<Box<dyn Future<Output = Result<Outcome<Vec<u8>>, EntityError<Self::Error>>> + Send + 'a>>;

    /// Decodes the reply bytes of the command tagged `tag` into that
    /// command's reply type, boxed (downcast it to
    /// `<Self as Handles<C>>::Reply`).
    fn decode_reply(codec: &W, tag: &str, bytes: &[u8]) -> Result<Box<dyn Any + Send>, CodecError>;

    /// [`to_wire`] with this aggregate's error: callable wherever
    /// `Self: RemoteCommands<W>` holds, without restating that `W` encodes
    /// the error.
    fn error_to_wire(codec: &W, error: EntityError<Self::Error>) -> WireEntityError;

    /// [`from_wire`] with this aggregate's error.
    fn error_from_wire(codec: &W, wire: WireEntityError) -> EntityError<Self::Error>;
}

/// Fails to compile unless the aggregate `A` can be served by a cluster with
/// the codec `W`: every command, every reply and the error of `A` must be
/// serde types (`#[derive(Serialize, Deserialize)]`). The error names the
/// type that is not, at the call. A cluster's builder requires the same
/// bound; call this in a test (or a `const _: fn() = ...`) to learn it
/// before.
///
/// ```
/// use nexus_core::codec::{Bincode, Json};
/// # use nexus_core::testkit::doc::Counter;
/// nexus_core::remote::assert_remote::<Counter, Json>();
/// nexus_core::remote::assert_remote::<Counter, Bincode>();
/// ```
pub fn assert_remote<A: RemoteCommands<W>, W: Codec>() {}

/// The typed outcome of command `C` from the reply bytes an owner answered
/// ([`WireAnswer::into_served`]): the reply decoded by
/// [`RemoteCommands::decode_reply`] under the command's `tag` and downcast
/// to `C`'s reply type. A reply that does not decode (or is of another
/// type: a tag of another command) is [`EntityError::Undeliverable`]: the
/// command was applied, its reply is lost.
///
/// ```
/// use nexus_core::codec::Json;
/// use nexus_core::remote::{RemoteCommands, decode_outcome};
/// use nexus_core::Outcome;
/// # use nexus_core::testkit::doc::{Add, Counter};
/// let outcome = decode_outcome::<Counter, Add, _>(&Json, "Add", Outcome::new(b"42".to_vec(), 7, None)).unwrap();
/// assert_eq!((outcome.reply, outcome.version), (42, 7));
/// assert!(decode_outcome::<Counter, Add, _>(&Json, "Add", Outcome::new(b"x".to_vec(), 7, None)).is_err());
/// ```
pub fn decode_outcome<A, C, W>(
    codec: &W,
    tag: &str,
    outcome: Outcome<Vec<u8>>,
) -> Result<Outcome<<A as Handles<C>>::Reply>, EntityError<A::Error>>
where
    A: RemoteCommands<W> + Handles<C>,
    W: Codec,
{
    outcome
        .try_map(|bytes| {
            let reply = A::decode_reply(codec, tag, &bytes)?;
            reply
                .downcast::<<A as Handles<C>>::Reply>()
                .map(|reply| *reply)
                .map_err(|_| CodecError::Decode {
                    what: format!("reply of `{tag}`"),
                    codec: codec.name(),
                    source: format!("`{tag}` is not the tag of the command sent").into(),
                })
        })
        .map_err(|source| EntityError::Undeliverable { source })
}
