//! Procedural macros for Nexus. Use them through `nexus_core`, which re-exports them.
