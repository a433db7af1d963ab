//! The messages in an entity's mailbox: commands that carry their own typed
//! reply channel, and the stop marker.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Span;
use tracing::field::{Empty, display};

use super::command_options::{CommandOptions, Outcome};
use crate::effect::Events;
use crate::telemetry::{CommandOutcome, EntityMetrics};
use crate::{Aggregate, CommandContext, Effect, EntityError, LogPosition, StreamId};

/// What waits in an entity's mailbox.
pub(crate) enum Envelope<A: Aggregate> {
    /// A command (asked or told).
    Command(Box<dyn Message<A>>),
    /// Stop after the messages queued before this one (a poison pill).
    Stop,
}

/// What deciding a command produced.
pub(crate) enum Decided<E> {
    /// Persist these events (maybe none), then stop if asked.
    Accepted { events: Events<E>, stop: bool },
    /// The aggregate rejected the command; the rejection is kept to answer
    /// after the batch committed.
    Rejected,
}

/// A command with its caller, type-erased over the command type so that one
/// mailbox holds every command of an aggregate.
///
/// Life of a message: `decide` (maybe several times, on conflicts), then
/// `prepare_reply` with the state right after its own events, then exactly
/// one of `complete` (after the commit) or `fail`. Consuming `self` in both
/// makes answering twice impossible.
pub(crate) trait Message<A: Aggregate>: Send {
    /// Decides against `state`, which is at `version`; forgets any earlier
    /// decision.
    fn decide(&mut self, state: &A, version: u64) -> Decided<A::Event>;
    /// The caller's command id and metadata.
    fn options(&self) -> &CommandOptions;
    /// Computes the reply from the state after this command's events.
    fn prepare_reply(&mut self, state: &A);
    /// Runs the side effects against the committed state and answers; `at`
    /// is where the command's own events left the stream, `answered` when
    /// its batch was answered (one reading of the clock for the batch).
    fn complete(self: Box<Self>, state: &A, stream: &StreamId, at: Written, answered: Instant);
    /// Answers a command found committed earlier (a retry under the same
    /// command id), without running its side effects again: they run at
    /// most once per transition.
    fn complete_replayed(
        self: Box<Self>,
        state: &A,
        stream: &StreamId,
        at: Written,
        answered: Instant,
    );
    /// Answers with an error instead.
    fn fail(self: Box<Self>, error: EntityError<A::Error>);
    /// The message as `Any`, to give a refused command back to its sender.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    /// Binds the command to the entity that took it: its answer is counted
    /// in `metrics`, and its span learns the stream and the batch size.
    fn observe(&mut self, metrics: &Arc<EntityMetrics>, stream: &StreamId, batch: usize);
    /// The command's `nexus.command` span (a child of the caller's span).
    fn span(&self) -> &Span;
    /// Counts the command as refused at the send (`outcome` is `Full` or
    /// `ShuttingDown`) in `metrics` and closes its span with it: a refused
    /// command reaches no entity, which would otherwise count it.
    fn refused(&mut self, outcome: CommandOutcome, metrics: &Arc<EntityMetrics>);
}

impl<A: Aggregate> Envelope<A> {
    /// [`Message::refused`] for a command; nothing for the stop marker,
    /// which is not a command.
    pub(crate) fn refused(&mut self, outcome: CommandOutcome, metrics: &Arc<EntityMetrics>) {
        if let Self::Command(message) = self {
            message.refused(outcome, metrics);
        }
    }
}

/// Where a command's own events left its stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    pub(crate) version: u64,
    pub(crate) position: Option<LogPosition>,
}

type Decide<A, C, R> = fn(&A, &C, &CommandContext) -> Result<Effect<A, R>, <A as Aggregate>::Error>;
type SideEffect<A> = Box<dyn FnOnce(&A) + Send>;
type ReplyFn<A, R> = Box<dyn FnOnce(&A) -> R + Send>;
pub(crate) type ReplyTo<A, R> = oneshot::Sender<Reply<A, R>>;

/// A command's answer, with the request it answers. The caller drops the
/// request on its own thread, where it was allocated: freed there, its
/// memory goes back to that thread's cache for the next request, instead of
/// the entity's thread freeing (under the allocator's lock) what another
/// thread allocated. So an asked command, and its `nexus.command` span,
/// are dropped when the caller takes the answer (`EntityRef::ask`
/// documents it); a told one when the entity has processed it.
pub(crate) struct Reply<A: Aggregate, R> {
    pub(crate) answer: Result<Outcome<R>, EntityError<A::Error>>,
    _spent: Box<dyn Any + Send>,
}

/// A command of type `C` whose handler replies `R`.
pub(crate) struct Request<A: Aggregate, C, R> {
    command: C,
    decide: Decide<A, C, R>,
    options: CommandOptions,
    /// `None` for a told command: nobody waits for the answer.
    reply_to: Option<ReplyTo<A, R>>,
    pending: Pending<A, R>,
    observed: Observed,
}

/// What the command's answer is reported to.
struct Observed {
    /// Opened in the caller's task, so the caller's span is its parent.
    span: Span,
    /// On tokio's clock, which a paused test clock moves, as the answer's is.
    sent: Instant,
    /// Set by the entity that takes the command.
    metrics: Option<Arc<EntityMetrics>>,
}

impl Observed {
    fn new<A: Aggregate>(options: &CommandOptions, sent: Instant) -> Self {
        let span = tracing::info_span!(
            "nexus.command",
            aggregate = A::NAME,
            stream = Empty,
            command_id = Empty,
            correlation_id = Empty,
            batch = Empty,
            version = Empty,
            outcome = Empty,
        );
        if !span.is_disabled() {
            if let Some(id) = options.id() {
                span.record("command_id", display(id));
            }
            if let Some(id) = options.correlation() {
                span.record("correlation_id", display(id));
            }
        }
        Self {
            span,
            sent,
            metrics: None,
        }
    }

    /// Counts the answer, given at `answered`, and closes the span with its
    /// outcome.
    fn settle<T, E>(
        &self,
        answer: &Result<T, EntityError<E>>,
        version: Option<u64>,
        answered: Instant,
    ) {
        let outcome = match answer {
            Ok(_) => CommandOutcome::Ok,
            Err(EntityError::Rejected(_)) => CommandOutcome::Rejected,
            Err(EntityError::Conflict { .. }) => CommandOutcome::Conflict,
            Err(EntityError::NotOwner { .. }) => CommandOutcome::NotOwner,
            Err(EntityError::MailboxFull { .. }) => CommandOutcome::Full,
            Err(EntityError::ShuttingDown { .. }) => CommandOutcome::ShuttingDown,
            Err(_) => CommandOutcome::Error,
        };
        self.record(outcome, version, answered);
    }

    /// Counts `outcome`, reached at `answered`, and closes the span with it.
    fn record(&self, outcome: CommandOutcome, version: Option<u64>, answered: Instant) {
        if let Some(metrics) = &self.metrics {
            metrics.command(outcome, answered.saturating_duration_since(self.sent));
        }
        if !self.span.is_disabled() {
            self.span.record("outcome", outcome.label());
            if let Some(version) = version {
                self.span.record("version", version);
            }
        }
    }
}

enum Pending<A: Aggregate, R> {
    Undecided,
    Accepted {
        side_effects: Vec<SideEffect<A>>,
        reply: Option<ReplyFn<A, R>>,
        value: Option<R>,
    },
    Rejected(A::Error),
}

impl<A: Aggregate, C: Send + 'static, R: Send + 'static> Request<A, C, R> {
    pub(crate) fn new(
        command: C,
        decide: Decide<A, C, R>,
        options: CommandOptions,
        reply_to: Option<ReplyTo<A, R>>,
        sent: Instant,
    ) -> Self {
        Self {
            observed: Observed::new::<A>(&options, sent),
            command,
            decide,
            options,
            reply_to,
            pending: Pending::Undecided,
        }
    }

    /// The command, taken back unanswered.
    pub(crate) fn into_command(self) -> C {
        self.command
    }
}

impl<A: Aggregate, C: Send + 'static, R: Send + 'static> Message<A> for Request<A, C, R> {
    fn decide(&mut self, state: &A, version: u64) -> Decided<A::Event> {
        self.pending = Pending::Undecided;
        let context =
            CommandContext::at(version).with_ids(self.options.id(), self.options.correlation());
        match (self.decide)(state, &self.command, &context) {
            Ok(effect) => {
                let parts = effect.into_parts();
                self.pending = Pending::Accepted {
                    side_effects: parts.side_effects,
                    reply: Some(parts.reply),
                    value: None,
                };
                Decided::Accepted {
                    events: parts.events,
                    stop: parts.stop,
                }
            }
            Err(rejection) => {
                self.pending = Pending::Rejected(rejection);
                Decided::Rejected
            }
        }
    }

    fn options(&self) -> &CommandOptions {
        &self.options
    }

    fn prepare_reply(&mut self, state: &A) {
        if let Pending::Accepted { reply, value, .. } = &mut self.pending
            && let Some(reply) = reply.take()
        {
            *value = Some(reply(state));
        }
    }

    fn complete(self: Box<Self>, state: &A, stream: &StreamId, at: Written, answered: Instant) {
        self.answer(state, stream, at, answered, true);
    }

    fn complete_replayed(
        self: Box<Self>,
        state: &A,
        stream: &StreamId,
        at: Written,
        answered: Instant,
    ) {
        self.answer(state, stream, at, answered, false);
    }

    fn fail(mut self: Box<Self>, error: EntityError<A::Error>) {
        let answer = Err(error);
        self.observed.settle(&answer, None, Instant::now());
        let reply_to = self.reply_to.take();
        send::<A, R>(reply_to, answer, self);
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn observe(&mut self, metrics: &Arc<EntityMetrics>, stream: &StreamId, batch: usize) {
        if self.observed.metrics.is_none() {
            self.observed.metrics = Some(Arc::clone(metrics));
        }
        let span = &self.observed.span;
        if !span.is_disabled() {
            span.record("stream", display(stream));
            span.record("batch", batch);
        }
    }

    fn span(&self) -> &Span {
        &self.observed.span
    }

    fn refused(&mut self, outcome: CommandOutcome, metrics: &Arc<EntityMetrics>) {
        self.observed.metrics = Some(Arc::clone(metrics));
        self.observed.record(outcome, None, Instant::now());
    }
}

impl<A: Aggregate, C: Send + 'static, R: Send + 'static> Request<A, C, R> {
    fn answer(
        mut self: Box<Self>,
        state: &A,
        stream: &StreamId,
        at: Written,
        answered: Instant,
        run_side_effects: bool,
    ) {
        let answer = match std::mem::replace(&mut self.pending, Pending::Undecided) {
            Pending::Accepted {
                side_effects,
                reply,
                value,
            } => {
                // Side effects are fire-and-forget after the commit: one that
                // panics is logged and does not take the committed reply away.
                let side_effects = if run_side_effects {
                    side_effects
                } else {
                    Vec::new()
                };
                for side_effect in side_effects {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| side_effect(state))) {
                        tracing::error!(%stream, panic = panic_message(&*panic), "a side effect panicked after the commit");
                    }
                }
                let reply = match (value, reply) {
                    (Some(value), _) => Ok(value),
                    (None, Some(reply)) => Ok(reply(state)),
                    (None, None) => Err(EntityError::Stopped {
                        stream: stream.clone(),
                    }),
                };
                reply.map(|reply| Outcome {
                    reply,
                    version: at.version,
                    position: at.position,
                })
            }
            Pending::Rejected(rejection) => Err(EntityError::Rejected(rejection)),
            Pending::Undecided => Err(EntityError::Stopped {
                stream: stream.clone(),
            }),
        };
        self.observed.settle(&answer, Some(at.version), answered);
        let reply_to = self.reply_to.take();
        send::<A, R>(reply_to, answer, self);
    }
}

/// Sends `answer`, and the `spent` request it answers, to the caller.
fn send<A: Aggregate, R>(
    reply_to: Option<ReplyTo<A, R>>,
    answer: Result<Outcome<R>, EntityError<A::Error>>,
    spent: Box<dyn Any + Send>,
) {
    match reply_to {
        // A caller that gave up (timed out) dropped its receiver; the answer
        // has nowhere to go, which is what the timeout told it.
        Some(reply_to) => drop(reply_to.send(Reply {
            answer,
            _spent: spent,
        })),
        None => {
            if let Err(error) = answer {
                tracing::warn!(%error, "a told command failed (dead letter)");
            }
        }
    }
}

/// The message of a caught panic, for the caller's error.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}
