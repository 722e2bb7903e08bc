//! Helpers shared by the Ruby classes.

pub mod args;
pub mod errors;
pub mod nogvl;
