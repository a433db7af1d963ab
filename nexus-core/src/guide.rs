//! # What the macros generate
