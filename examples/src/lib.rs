//! Domain examples shared by the example programs.
