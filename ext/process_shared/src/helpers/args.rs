//! Argument decoding shared by every class: timeouts and bounded integers, with the documented errors.

use std::time::Duration;

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::scan_args::{get_kwargs, scan_args};
use magnus::{prelude::*, Error, Float, Integer, RHash, Ruby, Value};
use process_shared_core::sys::Deadline;

/// Decode a timeout: `nil` (or absent) → `None` (no timeout: forever, or "do not wait" for `try_*` calls);
/// a non-negative Integer or Float (or other Real, e.g. Rational) → that many seconds, clamped to
/// [`Deadline::MAX_TIMEOUT`] (about 34 years, i.e. forever). So `Float::INFINITY` and huge Integers are
/// timeouts that never expire: `try_wait(Float::INFINITY)` waits, where `try_wait` (no timeout) does not.
/// Negative, NaN or non-numeric values raise `ArgumentError`.
pub fn timeout(ruby: &Ruby, v: Option<Value>) -> Result<Option<Duration>, Error> {
    let v = match v {
        None => return Ok(None),
        Some(v) if v.is_nil() => return Ok(None),
        Some(v) => v,
    };
    let secs = if let Some(i) = Integer::from_value(v) {
        return match i.to_i64() {
            Ok(n) if n < 0 => Err(bad_timeout(ruby, v)),
            Ok(n) => Ok(Some(Duration::from_secs(n as u64).min(Deadline::MAX_TIMEOUT))),
            // A Bignum: negative is an error, positive never expires.
            Err(_) if v.funcall::<_, _, bool>("negative?", ()).unwrap_or(true) => Err(bad_timeout(ruby, v)),
            Err(_) => Ok(Some(Deadline::MAX_TIMEOUT)),
        };
    } else if let Some(f) = Float::from_value(v) {
        f.to_f64()
    } else if v.is_kind_of(ruby.class_numeric()) && !v.is_kind_of(ruby.class_complex()) {
        // Whatever `to_f` raises (or a throw/break/kill passing through it) propagates unchanged; only a
        // result that is not a Float makes the timeout bad.
        let f: Value = v.funcall("to_f", ())?;
        Float::from_value(f).ok_or_else(|| bad_timeout(ruby, v))?.to_f64()
    } else {
        return Err(bad_timeout(ruby, v));
    };
    if secs.is_nan() || secs < 0.0 {
        return Err(bad_timeout(ruby, v));
    }
    // `min` also maps +Infinity to the longest timeout (never expires).
    Ok(Some(Duration::from_secs_f64(secs.min(Deadline::MAX_TIMEOUT.as_secs_f64()))))
}

fn bad_timeout(ruby: &Ruby, v: Value) -> Error {
    let shown = v.inspect();
    Error::new(
        ruby.exception_arg_error(),
        format!("timeout must be nil or a non-negative number of seconds, got {shown}"),
    )
}

/// How long a call may wait for what it asks: not at all, or until an optional deadline (`None`: forever).
#[derive(Clone, Copy, Debug)]
pub enum Patience {
    NoWait,
    Wait(Option<Deadline>),
}

impl Patience {
    /// Wait as long as it takes (`lock`, `enter`, `synchronize`).
    pub const FOREVER: Patience = Patience::Wait(None);

    /// The patience of a `try_*(timeout = nil)` call: no timeout, or 0, means "do not wait".
    pub fn of_try(ruby: &Ruby, argv: &[Value]) -> Result<Patience, Error> {
        arity(ruby, argv, 0, 1)?;
        Ok(match timeout(ruby, argv.first().copied())? {
            None => Patience::NoWait,
            Some(t) if t.is_zero() => Patience::NoWait,
            Some(t) => Patience::Wait(deadline(Some(t))),
        })
    }
}

/// The absolute deadline for an optional timeout.
pub fn deadline(timeout: Option<Duration>) -> Option<Deadline> {
    timeout.map(Deadline::after)
}

/// An Integer argument within `lo..=hi`: `TypeError` if it is not an Integer, `ArgumentError` naming the
/// range otherwise.
pub fn int_in(ruby: &Ruby, v: Value, what: &str, lo: i64, hi: i64) -> Result<i64, Error> {
    let i = Integer::from_value(v).ok_or_else(|| {
        Error::new(ruby.exception_type_error(), format!("{what} must be an Integer, got {}", class_name(v)))
    })?;
    match i.to_i64() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(Error::new(ruby.exception_arg_error(), format!("{what} must be in {lo}..{hi}, got {}", v.inspect()))),
    }
}

/// The name of `v`'s class for messages: its real class, not a singleton class (as Ruby's own messages say),
/// so that an object with singleton methods (even a BasicObject) is shown as, e.g., `Object`.
pub fn class_name(v: Value) -> String {
    // SAFETY: `rb_obj_class` accepts any VALUE and returns a live class object.
    let class = unsafe { Value::from_raw(rb_sys::rb_obj_class(v.as_raw())) };
    class.inspect()
}

/// Check the number of positional arguments like Ruby does (`ArgumentError`, "wrong number of arguments").
pub fn arity(ruby: &Ruby, argv: &[Value], min: usize, max: usize) -> Result<(), Error> {
    if (min..=max).contains(&argv.len()) {
        return Ok(());
    }
    let expected = if min == max { min.to_string() } else { format!("{min}..{max}") };
    Err(Error::new(
        ruby.exception_arg_error(),
        format!("wrong number of arguments (given {}, expected {expected})", argv.len()),
    ))
}

/// The `on_owner_dead:` keyword of `synchronize` and `with_write_lock` (their only argument): `None` when
/// absent or nil, else the callable. `ArgumentError` for positional or unknown arguments (as Ruby says
/// them), `TypeError` for something that does not respond to `call`.
pub fn on_owner_dead(ruby: &Ruby, argv: &[Value]) -> Result<Option<Value>, Error> {
    if argv.is_empty() {
        return Ok(None); // the common case, kept cheap
    }
    let args = scan_args::<(), (), (), (), RHash, ()>(argv)?;
    let kw = get_kwargs::<_, (), (Option<Value>,), ()>(args.keywords, &[], &["on_owner_dead"])?;
    match kw.optional.0 {
        Some(v) if !v.is_nil() => {
            if !v.respond_to("call", false)? {
                let msg = format!("on_owner_dead: must respond to #call, got {}", v.inspect());
                return Err(Error::new(ruby.exception_type_error(), msg));
            }
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

/// An Integer argument that fits C's `int64_t`: `TypeError` if it is not an Integer, `RangeError` if it
/// does not fit.
pub fn int64(ruby: &Ruby, v: Value, what: &str) -> Result<i64, Error> {
    let i = Integer::from_value(v).ok_or_else(|| {
        Error::new(ruby.exception_type_error(), format!("{what} must be an Integer, got {}", class_name(v)))
    })?;
    i.to_i64().map_err(|_| {
        Error::new(ruby.exception_range_error(), format!("{what} {} is outside the signed 64-bit range", v.inspect()))
    })
}

/// An index into `len` elements, negative counting from the end as for `Array#[]`: `TypeError` if it is not
/// an Integer, `IndexError` (naming `what`) outside `-len...len`.
pub fn index(ruby: &Ruby, v: Value, len: usize, what: &str) -> Result<usize, Error> {
    let i = Integer::from_value(v).ok_or_else(|| {
        Error::new(ruby.exception_type_error(), format!("index must be an Integer, got {}", class_name(v)))
    })?;
    let n = len as i64;
    match i.to_i64() {
        Ok(j) if (0..n).contains(&j) => Ok(j as usize),
        Ok(j) if (-n..0).contains(&j) => Ok((j + n) as usize),
        _ => Err(Error::new(
            ruby.exception_index_error(),
            format!("index {} outside of {what} bounds: {}...{n}", v.inspect(), -n),
        )),
    }
}

/// Where a new object lives: `name:`, `mode:` and `create:` from Ruby, for a named object.
pub struct NamedSpec {
    pub name: String,
    pub mode: u32,
    pub create: process_shared_core::sys::shm::Create,
}

/// Decode `name:`, `mode:` and `create:` of a named object: `TypeError` for a non-String name or a
/// non-Integer mode, `ArgumentError` for a name that is not 1..200 characters of `[A-Za-z0-9._-]`, a mode
/// outside 0..0o777, or a `create:` other than `:open_or_create`, `:create_only`, `:open_only`.
pub fn named_spec(ruby: &Ruby, name: Value, mode: Value, create: Value) -> Result<NamedSpec, Error> {
    use process_shared_core::sys::shm::{valid_name, Create, NAME_MAX};
    let name = magnus::RString::from_value(name)
        .ok_or_else(|| {
            Error::new(ruby.exception_type_error(), format!("name must be a String, got {}", class_name(name)))
        })?
        .to_string()?;
    if !valid_name(&name) {
        return Err(Error::new(
            ruby.exception_arg_error(),
            format!("name must be 1..{NAME_MAX} characters of [A-Za-z0-9._-], got {name:?}"),
        ));
    }
    let mode = int_in(ruby, mode, "mode", 0, 0o777)? as u32;
    let create = match magnus::Symbol::from_value(create).map(|s| s.name().map(|n| n.to_string())) {
        Some(Ok(s)) if s == "open_or_create" => Create::OpenOrCreate,
        Some(Ok(s)) if s == "create_only" => Create::CreateOnly,
        Some(Ok(s)) if s == "open_only" => Create::OpenOnly,
        _ => {
            return Err(Error::new(
                ruby.exception_arg_error(),
                format!("create must be :open_or_create, :create_only or :open_only, got {}", create.inspect()),
            ))
        }
    };
    Ok(NamedSpec { name, mode, create })
}

/// Split the arguments of a `_new_named(name, mode, create, *args)` call.
pub fn named_args<'a>(ruby: &Ruby, argv: &'a [Value]) -> Result<(NamedSpec, &'a [Value]), Error> {
    if argv.len() < 3 {
        return Err(Error::new(ruby.exception_arg_error(), "name, mode and create are required"));
    }
    Ok((named_spec(ruby, argv[0], argv[1], argv[2])?, &argv[3..]))
}
