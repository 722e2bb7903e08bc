//! The `process_shared` Ruby extension: magnus bindings over `process_shared_core`.
//!
//! Layout (wasmtime-rb style): `ruby_api/<class>.rs` holds one Ruby class each with its own `init`;
//! `helpers/errors.rs` maps every failure to a Ruby exception (the classes are defined in Ruby, in
//! `lib/process_shared/errors.rb`, and looked up lazily); `helpers/nogvl.rs` is the one place that releases
//! the GVL, and every blocking call goes through it.

mod helpers;
mod ruby_api;

use magnus::{Error, Ruby};

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    ruby_api::init(ruby)
}
