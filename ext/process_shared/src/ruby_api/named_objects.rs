//! `ProcessShared._named_objects` and `ProcessShared._inspect_named(name)`: the core's lock-free reader
//! ([`process_shared_core::inspect`]) converted to Ruby Hashes with String keys, in the schema documented in
//! `lib/process_shared/named_objects.rb` (which the `process_shared` command prints as JSON).

use magnus::{prelude::*, Error, IntoValue, RArray, RHash, Ruby, Value};
use process_shared_core::inspect::{self, Field, Holder, Report};
use process_shared_core::sys::owner::Liveness;

use crate::helpers::errors;

/// Every named object of this machine (`Errno::*` if the directory cannot be read; `Errno::ENOTSUP` on
/// macOS, which has no directory of shm objects).
pub fn named_objects(ruby: &Ruby) -> Result<RArray, Error> {
    let reports = inspect::list().map_err(|e| errors::io(ruby, e, "listing named objects"))?;
    let out = ruby.ary_new_capa(reports.len());
    for r in &reports {
        out.push(report(ruby, r)?)?;
    }
    Ok(out)
}

/// The object called `name` (`Errno::ENOENT` if there is none, `ArgumentError` for an invalid name).
pub fn inspect_named(ruby: &Ruby, name: String) -> Result<RHash, Error> {
    super::check_name(ruby, &name)?;
    let r = inspect::inspect(&name).map_err(|e| errors::io(ruby, e, &format!("named object {name:?}")))?;
    report(ruby, &r)
}

fn report(ruby: &Ruby, r: &Report) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset("name", r.name.as_str())?;
    let (object, error) = match &r.object {
        Ok(o) => (Some(o), None),
        Err(e) => (None, Some(e.as_str())),
    };
    h.aset("class", object.map(|o| o.class.name()))?;
    h.aset("size", object.map(|o| o.size))?;
    h.aset("file_size", r.file.map(|f| f.size))?;
    h.aset("mode", r.file.map(|f| format!("{:04o}", f.mode)))?;
    h.aset("uid", r.file.map(|f| f.uid))?;
    h.aset(
        "owner",
        match object.and_then(|o| o.owner) {
            Some(holder) => owner(ruby, holder)?.into_value_with(ruby),
            None => ruby.qnil().as_value(),
        },
    )?;
    h.aset("waiters", object.and_then(|o| o.waiters))?;
    h.aset(
        "state",
        match object {
            Some(o) => {
                let s = ruby.hash_new();
                for (k, v) in &o.state {
                    s.aset(*k, field(ruby, v))?;
                }
                s.as_value()
            }
            None => ruby.qnil().as_value(),
        },
    )?;
    h.aset("error", error)?;
    Ok(h)
}

fn owner(ruby: &Ruby, holder: Holder) -> Result<RHash, Error> {
    let h = ruby.hash_new();
    h.aset("pid", holder.pid)?;
    h.aset(
        "alive",
        match holder.alive {
            Liveness::Alive => Some(true),
            Liveness::Dead => Some(false),
            Liveness::Unknown => None,
        },
    )?;
    Ok(h)
}

fn field(ruby: &Ruby, v: &Field) -> Value {
    match v {
        Field::Bool(b) => b.into_value_with(ruby),
        Field::Int(i) => i.into_value_with(ruby),
        Field::Ints(v) => ruby.ary_from_vec(v.clone()).as_value(),
        Field::Null => ruby.qnil().as_value(),
    }
}
