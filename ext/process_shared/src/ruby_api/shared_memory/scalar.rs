//! Element values: how each type is converted from and to Ruby and stored (its native-endian bytes), and
//! the decoding of the Integer arguments (offsets, lengths, counts, indices).

use std::fmt::Display;
use std::mem::size_of;

use magnus::{prelude::*, Error, Float, Integer, IntoValue, Ruby, Value};

use crate::helpers::args;

/// A value stored in the segment: its native-endian bytes and its Ruby conversions.
pub(super) trait Scalar: Copy {
    type Raw: Copy + Default + AsRef<[u8]> + AsMut<[u8]>;
    fn from_raw(raw: Self::Raw) -> Self;
    fn to_raw(self) -> Self::Raw;
    fn to_ruby(self, ruby: &Ruby) -> Value;
    /// Convert a Ruby value for storing as type `ty`: `TypeError` if it is the wrong kind of value,
    /// `RangeError` if it does not fit. May run Ruby code (`to_f`, `address`).
    fn from_ruby(ruby: &Ruby, v: Value, ty: &str) -> Result<Self, Error>;

    /// Decode one element from a slice of exactly `size_of::<Self>()` bytes.
    #[inline]
    fn decode(bytes: &[u8]) -> Self {
        let mut raw = Self::Raw::default();
        raw.as_mut().copy_from_slice(bytes);
        Self::from_raw(raw)
    }
}

fn type_error(ruby: &Ruby, v: Value, want: &str) -> Error {
    Error::new(ruby.exception_type_error(), format!("no implicit conversion of {} into {want}", args::class_name(v)))
}

fn range_error(ruby: &Ruby, v: Value, ty: &str, range: impl Display) -> Error {
    Error::new(ruby.exception_range_error(), format!("{} out of range for :{ty} ({range})", v.inspect()))
}

/// `Raw`, `from_raw` and `to_raw` of a number type: its native-endian bytes.
macro_rules! native_bytes {
    ($t:ty) => {
        type Raw = [u8; size_of::<$t>()];
        #[inline]
        fn from_raw(raw: Self::Raw) -> Self {
            <$t>::from_ne_bytes(raw)
        }
        #[inline]
        fn to_raw(self) -> Self::Raw {
            self.to_ne_bytes()
        }
    };
}

macro_rules! int_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            native_bytes!($t);
            #[inline]
            fn to_ruby(self, ruby: &Ruby) -> Value {
                self.into_value_with(ruby)
            }
            #[inline]
            fn from_ruby(ruby: &Ruby, v: Value, ty: &str) -> Result<Self, Error> {
                let i = Integer::from_value(v).ok_or_else(|| type_error(ruby, v, "Integer"))?;
                i.to_i128()
                    .ok()
                    .and_then(|n| <$t>::try_from(n).ok())
                    .ok_or_else(|| range_error(ruby, v, ty, format_args!("{}..{}", <$t>::MIN, <$t>::MAX)))
            }
        }
    )*};
}
int_scalar!(i8, u8, i16, u16, i32, u32, i64, u64, usize);

/// Any real number (Integer, Float, Rational, ...) as an `f64`; `TypeError` otherwise.
fn to_f64(ruby: &Ruby, v: Value) -> Result<f64, Error> {
    if let Some(f) = Float::from_value(v) {
        return Ok(f.to_f64());
    }
    if v.is_kind_of(ruby.class_numeric()) && !v.is_kind_of(ruby.class_complex()) {
        return f64::try_convert(v);
    }
    Err(type_error(ruby, v, "Float"))
}

impl Scalar for f64 {
    native_bytes!(f64);
    #[inline]
    fn to_ruby(self, ruby: &Ruby) -> Value {
        self.into_value_with(ruby)
    }
    #[inline]
    fn from_ruby(ruby: &Ruby, v: Value, _ty: &str) -> Result<Self, Error> {
        to_f64(ruby, v)
    }
}

impl Scalar for f32 {
    native_bytes!(f32);
    #[inline]
    fn to_ruby(self, ruby: &Ruby) -> Value {
        f64::from(self).into_value_with(ruby)
    }
    /// Rounds to the nearest `f32`; a finite value beyond `f32`'s range is a `RangeError` (NaN and the
    /// infinities are stored as such).
    #[inline]
    fn from_ruby(ruby: &Ruby, v: Value, ty: &str) -> Result<Self, Error> {
        let d = to_f64(ruby, v)?;
        let f = d as f32;
        if f.is_infinite() && d.is_finite() {
            return Err(range_error(ruby, v, ty, format_args!("-{0:e}..{0:e}", f32::MAX)));
        }
        Ok(f)
    }
}

/// A `:pointer` element: an address, read back as an Integer.
#[derive(Clone, Copy)]
pub(super) struct Addr(usize);

impl Scalar for Addr {
    type Raw = [u8; size_of::<usize>()];
    #[inline]
    fn from_raw(raw: Self::Raw) -> Self {
        Addr(usize::from_ne_bytes(raw))
    }
    #[inline]
    fn to_raw(self) -> Self::Raw {
        self.0.to_ne_bytes()
    }
    #[inline]
    fn to_ruby(self, ruby: &Ruby) -> Value {
        self.0.into_value_with(ruby)
    }
    /// An Integer address, `nil` (NULL), or an object responding to `address` (e.g. `FFI::Pointer`).
    fn from_ruby(ruby: &Ruby, v: Value, ty: &str) -> Result<Self, Error> {
        let v = if v.is_nil() {
            return Ok(Addr(0));
        } else if Integer::from_value(v).is_none() && v.respond_to("address", false)? {
            v.funcall::<_, _, Value>("address", ())?
        } else {
            v
        };
        match Integer::from_value(v) {
            Some(_) => usize::from_ruby(ruby, v, ty).map(Addr),
            None => Err(Error::new(
                ruby.exception_type_error(),
                format!("{} is not a pointer (an Integer address, nil, or an object with #address)", v.inspect()),
            )),
        }
    }
}

/// An Integer argument (offset, length, count, index) as an `i128`, saturating beyond that (such values
/// are out of bounds anyway); `TypeError` if it is not an Integer.
pub(super) fn int_arg(ruby: &Ruby, v: Value) -> Result<i128, Error> {
    let i = Integer::from_value(v).ok_or_else(|| type_error(ruby, v, "Integer"))?;
    match i.to_i128() {
        Ok(n) => Ok(n),
        Err(_) if v.funcall::<_, _, bool>("negative?", ())? => Ok(i128::MIN),
        Err(_) => Ok(i128::MAX),
    }
}

pub(super) fn opt_int_arg(ruby: &Ruby, v: Option<&Value>) -> Result<Option<i128>, Error> {
    match v {
        Some(v) if !v.is_nil() => int_arg(ruby, *v).map(Some),
        _ => Ok(None),
    }
}
