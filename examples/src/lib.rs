//! Domain examples shared by the example programs.
pub mod bench;
pub mod domain;
