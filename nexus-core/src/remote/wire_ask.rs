//! The protocol of a forwarded ask: the request a node sends to an entity's
//! owner ([`WireAsk`]) and the answer it gets ([`WireAnswer`]). These two
//! and [`WireCommand`] are every message of it, so a reviewer reads the
//! whole conversation here.
//!
//! The envelope is always bincode (compact, and both ends are Nexus); the
//! command, the reply and the rejection inside are in the cluster's
//! configured codec.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::RemoteCommands;
use super::wire_error::{WireEntityError, from_wire, to_wire};
use crate::codec::{Bincode, Codec, PayloadCodec};
use crate::{CodecError, CommandOptions, EntityError, LogPosition, Outcome};

/// One command of an aggregate, encoded: the variant name of the command in
/// the aggregate's command enum (`Deposit`, or `InboundShip` for
/// `inbound::Ship` beside `outbound::Ship`) and its bytes in the cluster's
/// codec.
///
/// ```
/// use nexus_core::remote::WireCommand;
/// let command = WireCommand { tag: "Deposit".into(), bytes: br#"{"amount":5}"#.to_vec() };
/// assert_eq!(command.tag, "Deposit");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireCommand {
    /// The command's variant name in the aggregate's command enum.
    pub tag: String,
    /// The command, encoded by the codec.
    pub bytes: Vec<u8>,
}

/// A command forwarded to the node that owns its entity, with everything
/// [`CommandOptions`] carries.
///
/// ```
/// use nexus_core::CommandOptions;
/// use nexus_core::remote::{WireAsk, WireCommand};
/// let id = uuid::Uuid::now_v7();
/// let options = CommandOptions::new().command_id(id).header("tenant", "acme");
/// let command = WireCommand { tag: "Deposit".into(), bytes: vec![5] };
/// let ask = WireAsk::new("wallet", "alice", command, &options);
/// let back = WireAsk::from_bytes(&ask.to_bytes().unwrap()).unwrap();
/// assert_eq!(back, ask);
/// assert_eq!(back.options(), options);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireAsk {
    /// The aggregate's [`NAME`](crate::Aggregate::NAME).
    pub aggregate: String,
    /// The entity's id.
    pub id: String,
    /// The command.
    pub command: WireCommand,
    /// [`CommandOptions::id`].
    pub command_id: Option<Uuid>,
    /// [`CommandOptions::correlation`].
    pub correlation_id: Option<Uuid>,
    /// [`CommandOptions::causation`] as set (not defaulted to the command
    /// id, which the owner does itself).
    pub causation_id: Option<Uuid>,
    /// [`CommandOptions::headers`], in name order.
    pub headers: Vec<(String, String)>,
    /// How many nodes forwarded this ask so far: a node that is not the
    /// owner either (ownership moved meanwhile) forwards it once more, and a
    /// bound on hops stops a loop between nodes that disagree.
    pub hops: u8,
    /// When the sender stops waiting, in milliseconds since the Unix epoch
    /// (its wall clock). A node that receives the ask later (it was paused,
    /// or the ask queued in its socket) refuses it unapplied, and every hop
    /// waits no longer than it; `None` sets no bound beyond each node's own
    /// ask timeout.
    pub deadline_unix_ms: Option<u64>,
}

impl WireAsk {
    /// The ask of `command` to entity `id` of `aggregate`, with `options`,
    /// before its first hop.
    pub fn new(
        aggregate: impl Into<String>,
        id: impl Into<String>,
        command: WireCommand,
        options: &CommandOptions,
    ) -> Self {
        Self {
            aggregate: aggregate.into(),
            id: id.into(),
            command,
            command_id: options.id(),
            correlation_id: options.correlation(),
            causation_id: options.causation(),
            headers: options
                .headers()
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            hops: 0,
            deadline_unix_ms: None,
        }
    }

    /// The [`CommandOptions`] the caller attached, rebuilt.
    pub fn options(&self) -> CommandOptions {
        let mut options = CommandOptions::new();
        if let Some(id) = self.command_id {
            options = options.command_id(id);
        }
        if let Some(id) = self.correlation_id {
            options = options.correlation_id(id);
        }
        if let Some(id) = self.causation_id {
            options = options.causation_id(id);
        }
        for (name, value) in &self.headers {
            options = options.header(name.clone(), value.clone());
        }
        options
    }

    /// The ask as bytes (bincode).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        Bincode.encode(self, "ask")
    }

    /// An ask read from `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        Bincode.decode(bytes, "ask")
    }
}

/// What the owner answers to a [`WireAsk`]: the reply (in the cluster's
/// codec) with where the command left the entity, or the error.
///
/// ```
/// use nexus_core::codec::Json;
/// use nexus_core::remote::WireAnswer;
/// use nexus_core::{EntityError, Outcome};
/// let answer = WireAnswer::from_result::<_, String>(Ok(Outcome::new(b"42".to_vec(), 3, None)), &Json);
/// let back = WireAnswer::from_bytes(&answer.to_bytes().unwrap()).unwrap();
/// let outcome = back.into_result::<_, String>(&Json).unwrap();
/// assert_eq!((outcome.reply, outcome.version), (b"42".to_vec(), 3));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum WireAnswer {
    /// The command's reply.
    Ok {
        /// The reply, encoded by the codec.
        reply: Vec<u8>,
        /// [`Outcome::version`].
        version: u64,
        /// [`Outcome::position`].
        position: Option<LogPosition>,
    },
    /// Why there is no reply.
    Err(WireEntityError),
}

impl WireAnswer {
    /// The answer to send for `result` (what
    /// [`RemoteCommands::serve`](super::RemoteCommands::serve) returned),
    /// its rejection encoded by `codec`.
    pub fn from_result<W, E>(result: Result<Outcome<Vec<u8>>, EntityError<E>>, codec: &W) -> Self
    where
        W: PayloadCodec<E>,
        E: std::fmt::Display,
    {
        match result {
            Ok(outcome) => Self::ok(outcome),
            Err(error) => Self::Err(to_wire(error, codec)),
        }
    }

    /// The outcome this answer stands for: the reply still encoded (decode
    /// it with [`RemoteCommands::decode_reply`](super::RemoteCommands::decode_reply)),
    /// or the error with its rejection decoded by `codec`.
    pub fn into_result<W, E>(self, codec: &W) -> Result<Outcome<Vec<u8>>, EntityError<E>>
    where
        W: PayloadCodec<E>,
    {
        self.into_outcome().map_err(|error| from_wire(error, codec))
    }

    /// The answer to send for what `A::serve` returned: [`from_result`](Self::from_result)
    /// with only `A: RemoteCommands<W>` to know.
    ///
    /// ```
    /// use nexus_core::codec::Bincode;
    /// use nexus_core::remote::WireAnswer;
    /// use nexus_core::EntityError;
    /// # use nexus_core::testkit::doc::{AddZero, Counter};
    /// let answer = WireAnswer::served::<Counter, _>(Err(EntityError::Rejected(AddZero)), &Bincode);
    /// let error = answer.into_served::<Counter, _>(&Bincode).unwrap_err();
    /// assert_eq!(error.rejection(), Some(&AddZero));
    /// ```
    pub fn served<A, W>(result: Result<Outcome<Vec<u8>>, EntityError<A::Error>>, codec: &W) -> Self
    where
        A: RemoteCommands<W>,
        W: Codec,
    {
        match result {
            Ok(outcome) => Self::ok(outcome),
            Err(error) => Self::Err(A::error_to_wire(codec, error)),
        }
    }

    /// [`into_result`](Self::into_result) with only `A: RemoteCommands<W>`
    /// to know.
    pub fn into_served<A, W>(self, codec: &W) -> Result<Outcome<Vec<u8>>, EntityError<A::Error>>
    where
        A: RemoteCommands<W>,
        W: Codec,
    {
        self.into_outcome()
            .map_err(|error| A::error_from_wire(codec, error))
    }

    fn into_outcome(self) -> Result<Outcome<Vec<u8>>, WireEntityError> {
        match self {
            Self::Ok {
                reply,
                version,
                position,
            } => Ok(Outcome::new(reply, version, position)),
            Self::Err(error) => Err(error),
        }
    }

    fn ok(outcome: Outcome<Vec<u8>>) -> Self {
        Self::Ok {
            reply: outcome.reply,
            version: outcome.version,
            position: outcome.position,
        }
    }

    /// The answer as bytes (bincode).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        Bincode.encode(self, "answer")
    }

    /// An answer read from `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        Bincode.decode(bytes, "answer")
    }
}
