//! Nexus on several nodes (feature `cluster`): the peer transport between nodes.

pub mod transport;
