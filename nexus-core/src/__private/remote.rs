//! The generic halves of the `RemoteCommands` impl that `#[aggregate]`
//! generates: the macro emits one call of each per command, so the code in
//! the user's crate stays one line per command.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use crate::codec::PayloadCodec;
use crate::remote::WireCommand;
use crate::{Aggregate, CodecError, CommandOptions, EntityError, EntityRef, Handles, Outcome};

/// `command` encoded under `tag` if it is a `C`, `None` if it is another
/// type (the next command's turn).
pub fn encode<W, C>(
    codec: &W,
    tag: &'static str,
    command: &(dyn Any + Send),
) -> Option<Result<WireCommand, CodecError>>
where
    W: PayloadCodec<C>,
    C: 'static,
{
    let command = command.downcast_ref::<C>()?;
    Some(codec.encode_payload(command, tag).map(|bytes| WireCommand {
        tag: tag.to_owned(),
        bytes,
    }))
}

/// The error for a value that is none of `A`'s commands.
pub fn not_a_command<A: Aggregate>(codec: &'static str) -> CodecError {
    CodecError::Encode {
        what: format!("a command of `{}`", A::NAME),
        codec,
        source: format!("the value is not one of the commands of `{}`", A::NAME).into(),
    }
}

/// The boxed future of [`RemoteCommands::serve`](crate::remote::RemoteCommands::serve).
#[allow(clippy::type_complexity)]
pub type Served<'a, A> = Pin<
    Box<
        dyn Future<Output = Result<Outcome<Vec<u8>>, EntityError<<A as Aggregate>::Error>>>
            + Send
            + 'a,
    >,
>;

/// Decodes `wire` as a `C`, asks `entity` and encodes the reply.
pub fn serve<'a, A, C, W>(
    codec: &'a W,
    wire: &'a WireCommand,
    entity: &'a EntityRef<A>,
    options: CommandOptions,
) -> Served<'a, A>
where
    A: Handles<C>,
    C: Send + 'static,
    W: PayloadCodec<C> + PayloadCodec<<A as Handles<C>>::Reply>,
{
    Box::pin(async move {
        // A command that does not decode never reached the entity: like an
        // event that does not encode, nothing was written.
        let command: C = codec
            .decode_payload(&wire.bytes, &wire.tag)
            .map_err(|source| EntityError::Encode {
                stream: entity.stream().clone(),
                source,
            })?;
        let outcome = entity.ask_with(command, options).await?;
        // The command was applied; only its reply cannot travel.
        outcome
            .try_map(|reply| codec.encode_payload(&reply, &reply_what(&wire.tag)))
            .map_err(|source| EntityError::Undeliverable { source })
    })
}

/// The future [`serve`] answers for a tag that names none of `A`'s commands
/// (a peer that runs another version of the aggregate).
pub fn serve_unknown<'a, A: Aggregate>(
    codec: &'static str,
    wire: &'a WireCommand,
    entity: &'a EntityRef<A>,
) -> Served<'a, A> {
    let error = EntityError::Encode {
        stream: entity.stream().clone(),
        source: unknown_tag::<A>(codec, &wire.tag),
    };
    Box::pin(std::future::ready(Err(error)))
}

/// The reply of command `C`, decoded and boxed.
pub fn decode_reply<A, C, W>(
    codec: &W,
    tag: &str,
    bytes: &[u8],
) -> Result<Box<dyn Any + Send>, CodecError>
where
    A: Handles<C>,
    W: PayloadCodec<<A as Handles<C>>::Reply>,
{
    let reply: <A as Handles<C>>::Reply = codec.decode_payload(bytes, &reply_what(tag))?;
    Ok(Box::new(reply))
}

/// The error for a tag that names none of `A`'s commands.
pub fn unknown_tag<A: Aggregate>(codec: &'static str, tag: &str) -> CodecError {
    CodecError::Decode {
        what: format!("command `{tag}`"),
        codec,
        source: format!("`{tag}` is not a command of `{}`", A::NAME).into(),
    }
}

fn reply_what(tag: &str) -> String {
    format!("reply of `{tag}`")
}
