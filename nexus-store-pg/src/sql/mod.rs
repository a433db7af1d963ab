//! Every SQL statement of the stores, one file per table, and the
//! coalesced append of several streams (`append_group`), which writes
//! `streams` and `events` as a one-stream append does, in its own.
//!
//! Statements are templates over `{schema}`, rendered once per store with the
//! configured (validated, quoted) schema name, so each is prepared once per
//! connection and reused.

pub(crate) mod append_group;
#[cfg(feature = "cluster")]
pub(crate) mod cluster;
pub(crate) mod events;
pub(crate) mod leases;
pub(crate) mod snapshots;
pub(crate) mod states;

use crate::config::Schema;

/// `template` with `{schema}` replaced by the quoted schema name.
pub(crate) fn render(template: &str, schema: &Schema) -> String {
    template.replace("{schema}", schema.quoted())
}
