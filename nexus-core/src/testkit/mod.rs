//! The domain test kit: `given(events).when(command).then_expect_…`.
//!
//! Tests a handler as a pure function, without a runtime or a store: the
//! given events are applied to the empty state, the command is decided, and
//! the outcome is compared with what the test expects. A mismatch panics with
//! expected and actual side by side.
//!
//! ```
//! use nexus_core::testkit::given;
//! # use nexus_core::testkit::doc::{Counter, CounterEvent, Add, AddZero};
//! given::<Counter>([CounterEvent::Added(1)])
//!     .ask(Add(2))
//!     .then_expect_events([CounterEvent::Added(2)])
//!     .then_expect_reply(3);
//!
//! given::<Counter>([])
//!     .ask(Add(0))
//!     .then_expect_rejection(AddZero);
//! ```

#[doc(hidden)]
pub mod doc;
mod side_by_side;

use std::fmt::Debug;

use crate::{Aggregate, CommandContext, Handles, fold};
use side_by_side::side_by_side;

/// Starts a test from the state these events produce.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = events.into_iter().collect();
    Given {
        state: fold(A::default(), &history),
        version: history.len() as u64,
    }
}

/// Starts a test from the empty state.
pub fn given_no_events<A: Aggregate>() -> Given<A> {
    Given {
        state: A::default(),
        version: 0,
    }
}

/// A state to run one command against.
#[derive(Debug)]
pub struct Given<A> {
    state: A,
    /// How many events the state folds: the version handlers see.
    version: u64,
}

impl<A: Aggregate> Given<A> {
    /// Decides `command` through the aggregate's enum dispatch.
    pub fn when(self, command: impl Into<A::Command>) -> Outcome<A, ()> {
        let command = command.into();
        let decided = self.state.handle(&command);
        Outcome::new(self.state, decided)
    }

    /// Decides `command` through its typed handler, keeping the reply. The
    /// handler's [`CommandContext`] is at the number of given events.
    #[allow(clippy::needless_pass_by_value)] // Taking the command by value reads like sending it.
    pub fn ask<C>(self, command: C) -> Outcome<A, A::Reply>
    where
        A: Handles<C>,
    {
        let decided = self
            .state
            .handle_in(&command, &CommandContext::at(self.version));
        Outcome::new(self.state, decided)
    }

    /// The state the given events produced.
    pub fn state(&self) -> &A {
        &self.state
    }
}

/// What a command did: events and a reply, or a rejection.
///
/// The `then_expect_…` assertions return the outcome so they can be chained;
/// dropping it after the last one is the normal use.
pub struct Outcome<A: Aggregate, R> {
    result: Result<Accepted<A, R>, A::Error>,
}

struct Accepted<A: Aggregate, R> {
    events: Vec<A::Event>,
    state: A,
    reply: R,
    stopped: bool,
}

// The assertions take expected values by value and return `self` for
// chaining: `.then_expect_reply(5)` reads better than `.then_expect_reply(&5)`,
// and an assertion's result is not meant to be used.
#[allow(clippy::needless_pass_by_value, clippy::return_self_not_must_use)]
impl<A: Aggregate, R> Outcome<A, R> {
    fn new(mut state: A, decided: Result<crate::Effect<A, R>, A::Error>) -> Self {
        let result = decided.map(|effect| {
            let parts = effect.into_parts();
            for event in parts.events.as_slice() {
                state.apply(event);
            }
            let events = parts.events.as_slice().to_vec();
            let stopped = parts.stop;
            let reply = parts.complete(&state);
            Accepted {
                events,
                state,
                reply,
                stopped,
            }
        });
        Self { result }
    }

    fn accepted(&self, expectation: &str) -> &Accepted<A, R>
    where
        A::Error: Debug,
    {
        match &self.result {
            Ok(accepted) => accepted,
            Err(error) => panic!("expected {expectation}, but the command was rejected: {error:?}"),
        }
    }

    /// Asserts the command persisted exactly these events, in this order.
    #[track_caller]
    pub fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let actual = &self.accepted("events").events;
        assert!(
            *actual == expected,
            "the command persisted other events than expected\n{}",
            side_by_side(&format!("{expected:#?}"), &format!("{actual:#?}"))
        );
        self
    }

    /// Asserts the command was accepted and persisted nothing.
    #[track_caller]
    pub fn then_expect_no_events(self) -> Self
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        self.then_expect_events([])
    }

    /// Asserts the command was rejected with exactly this error.
    #[track_caller]
    pub fn then_expect_rejection(self, expected: A::Error) -> Self
    where
        A::Error: PartialEq + Debug,
        A::Event: Debug,
    {
        match &self.result {
            Err(actual) if *actual == expected => self,
            Err(actual) => panic!(
                "the command was rejected with another error than expected\n{}",
                side_by_side(&format!("{expected:#?}"), &format!("{actual:#?}"))
            ),
            Ok(accepted) => panic!(
                "expected the rejection {expected:?}, but the command was accepted and persisted\n{}",
                side_by_side(
                    &format!("Err({expected:#?})"),
                    &format!("{:#?}", accepted.events)
                )
            ),
        }
    }

    /// Asserts the reply, computed from the state after the events.
    #[track_caller]
    pub fn then_expect_reply(self, expected: R) -> Self
    where
        R: PartialEq + Debug,
        A::Error: Debug,
    {
        let actual = &self.accepted("a reply").reply;
        assert!(
            *actual == expected,
            "the command replied another value than expected\n{}",
            side_by_side(&format!("{expected:#?}"), &format!("{actual:#?}"))
        );
        self
    }

    /// Asserts the state after the events, with the closure's own assertions.
    #[track_caller]
    pub fn then_expect_state(self, check: impl FnOnce(&A)) -> Self
    where
        A::Error: Debug,
    {
        check(&self.accepted("a new state").state);
        self
    }

    /// Asserts whether the effect stops the entity.
    #[track_caller]
    pub fn then_expect_stop(self, expected: bool) -> Self
    where
        A::Error: Debug,
    {
        let actual = self.accepted("an effect").stopped;
        assert_eq!(
            actual, expected,
            "whether the entity stops after the command"
        );
        self
    }

    /// The events, or the rejection, for assertions of your own.
    pub fn events(&self) -> Result<&[A::Event], &A::Error> {
        self.result.as_ref().map(|a| a.events.as_slice())
    }
}
