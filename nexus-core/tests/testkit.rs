//! The test kit's assertions pass when the outcome matches and fail with
//! expected and actual side by side when it does not.

use std::panic::{AssertUnwindSafe, catch_unwind};

use nexus_core::testkit::doc::{Add, AddZero, Counter, CounterEvent, Get};
use nexus_core::testkit::{given, given_no_events};

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn matching_outcomes_pass() {
    given::<Counter>([CounterEvent::Added(1), CounterEvent::Added(2)])
        .ask(Add(4))
        .then_expect_events([CounterEvent::Added(4)])
        .then_expect_reply(7)
        .then_expect_state(|s| assert_eq!(s.value, 7))
        .then_expect_stop(false);
    given::<Counter>([CounterEvent::Added(1)])
        .ask(Get)
        .then_expect_no_events()
        .then_expect_reply(1);
    given_no_events::<Counter>()
        .when(Add(0))
        .then_expect_rejection(AddZero);
    given_no_events::<Counter>()
        .when(Add(2))
        .then_expect_events([CounterEvent::Added(2)]);
}

#[test]
fn other_events_are_shown_side_by_side() {
    let message = panic_message(|| {
        given_no_events::<Counter>()
            .ask(Add(3))
            .then_expect_events([CounterEvent::Added(4)]);
    });
    assert!(
        message.starts_with("the command persisted other events than expected"),
        "{message}"
    );
    assert!(message.contains("  expected"), "{message}");
    assert!(message.contains("| actual"), "{message}");
    assert!(message.contains("!         4, |         3,"), "{message}");
}

#[test]
fn an_unexpected_acceptance_or_rejection_says_which() {
    let message = panic_message(|| {
        given_no_events::<Counter>()
            .ask(Add(3))
            .then_expect_rejection(AddZero);
    });
    assert!(
        message.contains("expected the rejection AddZero, but the command was accepted"),
        "{message}"
    );

    let message = panic_message(|| {
        given_no_events::<Counter>()
            .ask(Add(0))
            .then_expect_events([CounterEvent::Added(0)]);
    });
    assert_eq!(
        message,
        "expected events, but the command was rejected: AddZero"
    );
}

#[test]
fn another_reply_is_shown_side_by_side() {
    let message = panic_message(|| {
        given::<Counter>([CounterEvent::Added(2)])
            .ask(Get)
            .then_expect_reply(3);
    });
    assert!(message.contains("! 3        | 2"), "{message}");
}
