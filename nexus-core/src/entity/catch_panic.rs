//! Turns a panic inside a future into an error, so that a panicking step
//! (an `apply` during recovery, a store's append) restarts the entity
//! instead of killing its task.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::task::Poll;

use super::message::panic_message;

/// The future's output, or the panic's message. Pinned in place, so the
/// hot path allocates nothing for it.
pub(crate) async fn catch_panic<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = pin!(future);
    // A future that panicked is not polled again: it is dropped with the
    // incarnation whose step it was.
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_message(&*panic))),
        },
    )
    .await
}
