//! What a lease implementation records about its shards (through the
//! recorder in effect where it runs).

use super::names;

/// A shard was acquired by this process.
///
/// ```
/// nexus_core::telemetry::lease::shard_acquired();
/// nexus_core::telemetry::lease::shard_released();
/// ```
pub fn shard_acquired() {
    metrics::gauge!(names::LEASE_SHARDS_HELD).increment(1.0);
}

/// A shard held by this process was released or lost.
pub fn shard_released() {
    metrics::gauge!(names::LEASE_SHARDS_HELD).decrement(1.0);
}

/// The database no longer had a shard's lease at this process's epoch.
///
/// ```
/// nexus_core::telemetry::lease::shard_lost();
/// ```
pub fn shard_lost() {
    metrics::counter!(names::LEASE_SHARDS_LOST).increment(1);
}
