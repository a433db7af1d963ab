//! Misuse of the macros is a compile error whose message points at the
//! user's code and says what to do. Each `ui/*.rs` is one mistake; its
//! `.stderr` is the message a user reads, reviewed like any other text.

// The messages (rustc's own parts included) are those of the pinned compiler;
// another compiler version words and renders them differently.
#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr files are written by rustc 1.95"
)]
#[test]
fn misuse_fails_to_compile_with_a_helpful_message() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
