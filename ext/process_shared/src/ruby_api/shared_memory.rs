//! `ProcessShared::SharedMemory` — a typed, bounds-checked segment of shared memory with FFI::Pointer's
//! accessor family — and its subclass `ProcessShared::SharedArray`, indexed by element.
//!
//! Every element type is described once, in the `types!` table at the bottom: it generates the marker
//! types, the runtime type table (used by `SharedArray#[]`, `#[]=`, `#to_a`) and the registration of the
//! eight accessors per type (`get_T`, `put_T`, `read_T`, `write_T`, `get_array_of_T`, `put_array_of_T`,
//! `read_array_of_T`, `write_array_of_T`). Values are stored in native byte order at any offset (no
//! alignment is required). Every byte access goes through the bounds-checked [`Region`] methods defined
//! here, so no offset coming from Ruby can reach memory outside the segment.

use std::ffi::{c_int, c_long, c_longlong, c_short, c_uint, c_ulong, c_ulonglong, c_ushort};
use std::fmt::Display;
use std::mem::size_of;
use std::ptr;

use magnus::{
    method, prelude::*, typed_data::Obj, Error, Float, Integer, IntoValue, RArray, RClass, RModule, RString, Ruby,
    Symbol, Value,
};

use super::shared::{NamedSpec, Region};
use crate::helpers::args;
use crate::helpers::errors;
use process_shared_core::marshal;

/// Header of a stored object: this magic, then the Marshal payload's length (u32 little-endian).
const OBJECT_MAGIC: &[u8; 4] = b"PSM1";
const OBJECT_HEADER: usize = 8;

// ---------------------------------------------------------------------------------------------------------
// Bounds-checked byte access to a Region (built on its public API only).
// ---------------------------------------------------------------------------------------------------------

impl Region {
    /// `IndexError` for an access of `len` bytes at `offset` that does not lie within the region.
    pub(crate) fn index_error(&self, ruby: &Ruby, offset: impl Display, len: impl Display) -> Error {
        Error::new(
            ruby.exception_index_error(),
            format!("offset {offset}, length {len} is out of bounds (size {})", self.len()),
        )
    }

    /// The address of the `len` bytes at `offset`, after checking the region is open (`ClosedError`) and
    /// that `offset + len <= len()` (`IndexError`). Valid until the next call that can run Ruby code.
    fn span(&self, ruby: &Ruby, offset: usize, len: usize) -> Result<*mut u8, Error> {
        let p = self.ptr(ruby)?;
        match offset.checked_add(len) {
            // SAFETY: `offset <= end <= self.len()`, and the mapping (at least `len()` bytes) is live while
            // the region is open, so the result stays inside it.
            Some(end) if end <= self.len() => Ok(unsafe { p.add(offset) }),
            _ => Err(self.index_error(ruby, offset, len)),
        }
    }

    /// Copy `buf.len()` bytes at `offset` out of the region.
    #[inline]
    pub(crate) fn read(&self, ruby: &Ruby, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        let src = self.span(ruby, offset, buf.len())?;
        // SAFETY: `src..src+buf.len()` is in the live mapping (`span`); `buf` is a distinct local buffer.
        // Another process may write these bytes concurrently: like a C memcpy, that can tear a value but
        // every bit pattern is a valid `u8`.
        unsafe { ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy `data` into the region at `offset` (all of it, or nothing if it does not fit).
    #[inline]
    pub(crate) fn write(&self, ruby: &Ruby, offset: usize, data: &[u8]) -> Result<(), Error> {
        let dst = self.span(ruby, offset, data.len())?;
        // SAFETY: `dst..dst+data.len()` is in the live, writable mapping (`span`). `ptr::copy` tolerates
        // overlap, should `data` ever alias the mapping.
        unsafe { ptr::copy(data.as_ptr(), dst, data.len()) };
        Ok(())
    }

    /// Set `len` bytes at `offset` to `byte`.
    pub(crate) fn fill(&self, ruby: &Ruby, offset: usize, len: usize, byte: u8) -> Result<(), Error> {
        let dst = self.span(ruby, offset, len)?;
        // SAFETY: `dst..dst+len` is in the live, writable mapping (`span`).
        unsafe { ptr::write_bytes(dst, byte, len) };
        Ok(())
    }

    /// Run `f` on the `len` bytes at `offset`. The region is pinned meanwhile, so the bytes stay mapped
    /// even if `f` allocates Ruby objects and something closes the object.
    pub(crate) fn with_bytes<R>(
        &self,
        ruby: &Ruby,
        offset: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        let pin = self.pin(ruby)?;
        match offset.checked_add(len) {
            Some(end) if end <= self.len() => {
                // SAFETY: `offset + len <= len()` and the mapping stays live while `pin` does (close defers
                // the unmap). The bytes are plain data; writers in other processes can only tear them, as
                // they would a C memcpy, and `f` only copies or scans them.
                let bytes = unsafe { std::slice::from_raw_parts(pin.as_ptr().add(offset), len) };
                Ok(f(bytes))
            }
            _ => Err(self.index_error(ruby, offset, len)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Element types: how each is converted from and to Ruby and stored.
// ---------------------------------------------------------------------------------------------------------

/// A value stored in the segment: its native-endian bytes and its Ruby conversions.
trait Scalar: Copy {
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

macro_rules! int_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            type Raw = [u8; size_of::<$t>()];
            #[inline]
            fn from_raw(raw: Self::Raw) -> Self {
                <$t>::from_ne_bytes(raw)
            }
            #[inline]
            fn to_raw(self) -> Self::Raw {
                self.to_ne_bytes()
            }
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
    type Raw = [u8; 8];
    #[inline]
    fn from_raw(raw: Self::Raw) -> Self {
        f64::from_ne_bytes(raw)
    }
    #[inline]
    fn to_raw(self) -> Self::Raw {
        self.to_ne_bytes()
    }
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
    type Raw = [u8; 4];
    #[inline]
    fn from_raw(raw: Self::Raw) -> Self {
        f32::from_ne_bytes(raw)
    }
    #[inline]
    fn to_raw(self) -> Self::Raw {
        self.to_ne_bytes()
    }
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
struct Addr(usize);

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

/// One type name (`:int`, `:int32`, ...), as a zero-sized marker carrying its Rust type.
trait Kind {
    type T: Scalar;
    const NAME: &'static str;
    const SIZE: usize = size_of::<Self::T>();
}

/// A type name at run time: the element type of a SharedMemory, with its per-type operations.
struct TypeInfo {
    name: &'static str,
    size: usize,
    load: fn(&SharedMemory, &Ruby, usize) -> Result<Value, Error>,
    store: fn(&SharedMemory, &Ruby, usize, Value) -> Result<(), Error>,
    load_all: fn(&SharedMemory, &Ruby, usize, usize) -> Result<RArray, Error>,
}

impl TypeInfo {
    fn named(name: &str) -> Option<&'static TypeInfo> {
        TYPES.iter().find(|t| t.name == name)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Argument decoding.
// ---------------------------------------------------------------------------------------------------------

/// An Integer argument (offset, length, count, index) as an `i128`, saturating beyond that (such values
/// are out of bounds anyway); `TypeError` if it is not an Integer.
fn int_arg(ruby: &Ruby, v: Value) -> Result<i128, Error> {
    let i = Integer::from_value(v).ok_or_else(|| type_error(ruby, v, "Integer"))?;
    match i.to_i128() {
        Ok(n) => Ok(n),
        Err(_) if v.funcall::<_, _, bool>("negative?", ())? => Ok(i128::MIN),
        Err(_) => Ok(i128::MAX),
    }
}

fn opt_int_arg(ruby: &Ruby, v: Option<&Value>) -> Result<Option<i128>, Error> {
    match v {
        Some(v) if !v.is_nil() => int_arg(ruby, *v).map(Some),
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The class.
// ---------------------------------------------------------------------------------------------------------

#[magnus::wrap(class = "ProcessShared::SharedMemory", free_immediately, size)]
pub struct SharedMemory {
    region: Region,
    ty: &'static TypeInfo,
    count: usize,
    /// (offset, length, fingerprint) of the last object stream this process wrote or checked: reading
    /// back exactly those bytes needs no second [`marshal::check`] walk.
    checked: std::cell::Cell<(usize, usize, u64)>,
}

impl SharedMemory {
    fn new(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<SharedMemory>, Error> {
        Self::build(ruby, class, argv, "uchar", "ProcessShared::SharedMemory", None)
    }

    fn new_array(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<SharedMemory>, Error> {
        Self::build(ruby, class, argv, "int", "ProcessShared::SharedArray", None)
    }

    fn new_named(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<SharedMemory>, Error> {
        let (spec, rest) = args::named_args(ruby, argv)?;
        Self::build(ruby, class, rest, "uchar", "ProcessShared::SharedMemory", Some(&spec))
    }

    fn new_array_named(ruby: &Ruby, class: RClass, argv: &[Value]) -> Result<Obj<SharedMemory>, Error> {
        let (spec, rest) = args::named_args(ruby, argv)?;
        Self::build(ruby, class, rest, "int", "ProcessShared::SharedArray", Some(&spec))
    }

    /// `new(size_or_type = default, count = 1)`: an Integer is a size in bytes (of `:uchar`), a Symbol an
    /// element type with `count` elements.
    fn build(
        ruby: &Ruby,
        class: RClass,
        argv: &[Value],
        default: &str,
        what: &'static str,
        spec: Option<&NamedSpec>,
    ) -> Result<Obj<SharedMemory>, Error> {
        args::arity(ruby, argv, 0, 2)?;
        let count_arg = |ruby: &Ruby, name: &str| -> Result<i128, Error> {
            let n = opt_int_arg(ruby, argv.get(1))?.unwrap_or(1);
            if n < 1 {
                return Err(errors::arg(ruby, format!("{name} must be at least 1, got {}", argv[1].inspect())));
            }
            Ok(n)
        };
        let uchar = TypeInfo::named("uchar");
        let (ty, count) = match argv.first() {
            None => (TypeInfo::named(default), 1),
            Some(&v) if Integer::from_value(v).is_some() => {
                if count_arg(ruby, "count")? != 1 {
                    return Err(errors::arg(ruby, "count is only allowed with an element type, e.g. new(:int, 4)"));
                }
                let n = int_arg(ruby, v)?;
                if n < 1 {
                    let msg = format!("size must be at least 1 byte, got {}", v.inspect());
                    return Err(errors::arg(ruby, msg));
                }
                (uchar, n)
            }
            Some(&v) => match Symbol::from_value(v) {
                Some(sym) => {
                    let name = sym.name()?;
                    let ty = TypeInfo::named(&name).ok_or_else(|| {
                        let known: Vec<String> = TYPES.iter().map(|t| format!(":{}", t.name)).collect();
                        let msg = format!("unknown type :{name} (known types: {})", known.join(" "));
                        errors::arg(ruby, msg)
                    })?;
                    (Some(ty), count_arg(ruby, "count")?)
                }
                None => {
                    let msg =
                        format!("size_or_type must be an Integer size or a Symbol type, got {}", args::class_name(v));
                    return Err(Error::new(ruby.exception_type_error(), msg));
                }
            },
        };
        let ty = ty.ok_or_else(|| errors::internal(ruby, "type table is missing a default type"))?;
        // No address space reaches 2^62 bytes (x86_64: 2^47, or 2^56 with 5-level paging): bigger sizes could
        // never be mapped, and near isize::MAX rounding up to whole pages would overflow (EINVAL). Smaller
        // ones the system cannot map raise ENOMEM.
        let addressable = |&s: &i128| s <= isize::MAX as i128 / 2;
        let size = count.checked_mul(ty.size as i128).filter(addressable).ok_or_else(|| {
            let msg = format!("{count} elements of :{} are too large for memory", ty.name);
            errors::arg(ruby, msg)
        })?;
        // Both fit: `1 <= count <= size <= isize::MAX / 2`.
        let (size, count) = (size as usize, count as usize);
        let region = match spec {
            None => Region::anonymous(ruby, size, what)?,
            // A named segment of another size is refused (its layout differs).
            Some(spec) => Region::named(ruby, spec, size, what, |_| {})?,
        };
        let mem = SharedMemory { region, ty, count, checked: std::cell::Cell::new((usize::MAX, 0, 0)) };
        Ok(ruby.obj_wrap_as(mem, class))
    }

    /// Check that `len` bytes at `offset` (both as given from Ruby, possibly negative or huge) lie within
    /// the segment; the offset as a `usize`. `ClosedError` first, then `IndexError`.
    fn at(&self, ruby: &Ruby, offset: i128, len: i128) -> Result<usize, Error> {
        self.region.ptr(ruby)?;
        match offset.checked_add(len) {
            Some(end) if offset >= 0 && len >= 0 && end <= self.region.len() as i128 => Ok(offset as usize),
            _ => Err(self.region.index_error(ruby, offset, len)),
        }
    }

    /// [`at`](Self::at) for an offset argument and a length in bytes.
    #[inline]
    fn at_arg(&self, ruby: &Ruby, offset: Value, len: usize) -> Result<usize, Error> {
        self.region.ptr(ruby)?;
        self.at(ruby, int_arg(ruby, offset)?, len as i128)
    }

    /// The byte offset of element `index` (negative counts from the end); `IndexError` when out of range.
    fn element(&self, ruby: &Ruby, index: Value) -> Result<usize, Error> {
        self.region.ptr(ruby)?;
        let i = int_arg(ruby, index)?;
        let n = self.count as i128;
        let j = if i < 0 { i + n } else { i };
        if !(0..n).contains(&j) {
            let msg = format!("index {} outside of array bounds: {}...{n}", index.inspect(), -n);
            return Err(Error::new(ruby.exception_index_error(), msg));
        }
        Ok(j as usize * self.ty.size)
    }

    // Typed access, generic over the type name (monomorphised per name by `types!`).

    fn load<K: Kind>(&self, ruby: &Ruby, at: usize) -> Result<Value, Error> {
        let mut raw = <K::T as Scalar>::Raw::default();
        self.region.read(ruby, at, raw.as_mut())?;
        Ok(K::T::from_raw(raw).to_ruby(ruby))
    }

    fn store<K: Kind>(&self, ruby: &Ruby, at: usize, v: Value) -> Result<(), Error> {
        // Convert first: it may run Ruby code; `write` then re-checks that the segment is still open.
        let x = K::T::from_ruby(ruby, v, K::NAME)?;
        self.region.write(ruby, at, x.to_raw().as_ref())
    }

    fn load_all<K: Kind>(&self, ruby: &Ruby, at: usize, n: usize) -> Result<RArray, Error> {
        let len = n.checked_mul(K::SIZE).ok_or_else(|| self.region.index_error(ruby, at, "(overflow)"))?;
        self.region.with_bytes(ruby, at, len, |bytes| {
            ruby.ary_from_iter(bytes.chunks_exact(K::SIZE).map(|c| K::T::decode(c).to_ruby(ruby)))
        })
    }

    fn store_all<K: Kind>(&self, ruby: &Ruby, at: usize, ary: RArray) -> Result<(), Error> {
        self.at(ruby, at as i128, (ary.len() as i128).saturating_mul(K::SIZE as i128))?;
        // Convert every element before writing any: a bad element leaves the memory untouched. The array
        // is re-read at each step because conversions may run Ruby code that changes it.
        let mut buf = Vec::with_capacity(ary.len() * K::SIZE);
        let mut i = 0;
        while i < ary.len() {
            let v: Value = ary.entry(i as isize)?;
            buf.extend_from_slice(K::T::from_ruby(ruby, v, K::NAME)?.to_raw().as_ref());
            i += 1;
        }
        self.region.write(ruby, at, &buf)
    }

    // The accessor family (`types!` registers these for every type name).

    fn get<K: Kind>(ruby: &Ruby, rb_self: &Self, offset: Value) -> Result<Value, Error> {
        let at = rb_self.at_arg(ruby, offset, K::SIZE)?;
        rb_self.load::<K>(ruby, at)
    }

    fn put<K: Kind>(ruby: &Ruby, rb_self: Obj<Self>, offset: Value, v: Value) -> Result<Obj<Self>, Error> {
        let at = rb_self.at_arg(ruby, offset, K::SIZE)?;
        rb_self.store::<K>(ruby, at, v)?;
        Ok(rb_self)
    }

    fn read<K: Kind>(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.load::<K>(ruby, 0)
    }

    fn write<K: Kind>(ruby: &Ruby, rb_self: Obj<Self>, v: Value) -> Result<Obj<Self>, Error> {
        rb_self.store::<K>(ruby, 0, v)?;
        Ok(rb_self)
    }

    fn get_array<K: Kind>(ruby: &Ruby, rb_self: &Self, offset: Value, n: Value) -> Result<RArray, Error> {
        rb_self.region.ptr(ruby)?;
        let (offset, n) = (int_arg(ruby, offset)?, int_arg(ruby, n)?);
        let at = rb_self.at(ruby, offset, n.saturating_mul(K::SIZE as i128))?;
        rb_self.load_all::<K>(ruby, at, n as usize)
    }

    fn put_array<K: Kind>(ruby: &Ruby, rb_self: Obj<Self>, offset: Value, ary: RArray) -> Result<Obj<Self>, Error> {
        let at = rb_self.at_arg(ruby, offset, 0)?;
        rb_self.store_all::<K>(ruby, at, ary)?;
        Ok(rb_self)
    }

    fn read_array<K: Kind>(ruby: &Ruby, rb_self: &Self, n: Value) -> Result<RArray, Error> {
        rb_self.region.ptr(ruby)?;
        let n = int_arg(ruby, n)?;
        rb_self.at(ruby, 0, n.saturating_mul(K::SIZE as i128))?;
        rb_self.load_all::<K>(ruby, 0, n as usize)
    }

    fn write_array<K: Kind>(ruby: &Ruby, rb_self: Obj<Self>, ary: RArray) -> Result<Obj<Self>, Error> {
        rb_self.store_all::<K>(ruby, 0, ary)?;
        Ok(rb_self)
    }

    // Bytes and strings.

    /// `len` bytes at `offset` as a binary (ASCII-8BIT) String.
    fn bytes_at(&self, ruby: &Ruby, offset: i128, len: i128) -> Result<RString, Error> {
        let at = self.at(ruby, offset, len)?;
        self.region.with_bytes(ruby, at, len as usize, |b| ruby.str_from_slice(b))
    }

    /// The bytes at `offset` up to the first NUL, within `len` bytes (default: to the end).
    fn string_at(&self, ruby: &Ruby, offset: i128, len: Option<i128>) -> Result<RString, Error> {
        self.region.ptr(ruby)?;
        let len = len.unwrap_or_else(|| (self.region.len() as i128).saturating_sub(offset).max(0));
        let at = self.at(ruby, offset, len)?;
        self.region.with_bytes(ruby, at, len as usize, |b| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            ruby.str_from_slice(&b[..end])
        })
    }

    /// FFI's `put_bytes(offset, str, index = 0, length = nil)`: `length` bytes of `str` from `index` (a
    /// `RangeError` if they are not all in `str`), written at `offset`.
    fn put_bytes_at(
        &self,
        ruby: &Ruby,
        offset: i128,
        str: Value,
        index: Option<&Value>,
        length: Option<&Value>,
    ) -> Result<(), Error> {
        self.region.ptr(ruby)?;
        let str = RString::try_convert(str)?;
        let index = opt_int_arg(ruby, index)?.unwrap_or(0);
        let length = opt_int_arg(ruby, length)?;
        let str_len = str.len() as i128;
        if !(0..=str_len).contains(&index) {
            let msg = format!("index {index} is out of range for a String of {str_len} bytes");
            return Err(Error::new(ruby.exception_range_error(), msg));
        }
        let length = length.unwrap_or(str_len - index);
        if length < 0 || length > str_len - index {
            let msg = format!("index {index} + length {length} is out of range for a String of {str_len} bytes");
            return Err(Error::new(ruby.exception_range_error(), msg));
        }
        let at = self.at(ruby, offset, length)?;
        let (index, length) = (index as usize, length as usize);
        // SAFETY: the slice is used only by `write`, which runs no Ruby code, so `str` cannot change
        // meanwhile; `index + length <= str.len()` was checked above.
        let bytes = unsafe { &str.as_slice()[index..index + length] };
        self.region.write(ruby, at, bytes)
    }

    /// `str`'s bytes and a terminating NUL at `offset` (`IndexError` if the NUL does not fit too).
    fn put_string_at(&self, ruby: &Ruby, offset: i128, str: Value) -> Result<(), Error> {
        self.region.ptr(ruby)?;
        let str = RString::try_convert(str)?;
        let at = self.at(ruby, offset, str.len() as i128 + 1)?;
        // SAFETY: used only by `write` (no Ruby code runs), so `str` cannot change meanwhile.
        self.region.write(ruby, at, unsafe { str.as_slice() })?;
        self.region.write(ruby, at + str.len(), &[0])
    }

    fn get_bytes(ruby: &Ruby, rb_self: &Self, offset: Value, len: Value) -> Result<RString, Error> {
        rb_self.region.ptr(ruby)?;
        rb_self.bytes_at(ruby, int_arg(ruby, offset)?, int_arg(ruby, len)?)
    }

    fn read_bytes(ruby: &Ruby, rb_self: &Self, len: Value) -> Result<RString, Error> {
        rb_self.region.ptr(ruby)?;
        rb_self.bytes_at(ruby, 0, int_arg(ruby, len)?)
    }

    fn put_bytes(ruby: &Ruby, rb_self: Obj<Self>, argv: &[Value]) -> Result<Obj<Self>, Error> {
        args::arity(ruby, argv, 2, 4)?;
        rb_self.region.ptr(ruby)?;
        rb_self.put_bytes_at(ruby, int_arg(ruby, argv[0])?, argv[1], argv.get(2), argv.get(3))?;
        Ok(rb_self)
    }

    fn write_bytes(ruby: &Ruby, rb_self: Obj<Self>, argv: &[Value]) -> Result<Obj<Self>, Error> {
        args::arity(ruby, argv, 1, 3)?;
        rb_self.put_bytes_at(ruby, 0, argv[0], argv.get(1), argv.get(2))?;
        Ok(rb_self)
    }

    fn get_string(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<RString, Error> {
        args::arity(ruby, argv, 1, 2)?;
        rb_self.region.ptr(ruby)?;
        rb_self.string_at(ruby, int_arg(ruby, argv[0])?, opt_int_arg(ruby, argv.get(1))?)
    }

    /// FFI's `read_string(len = nil)`: `len` bytes, or the bytes up to the first NUL.
    fn read_string(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<RString, Error> {
        args::arity(ruby, argv, 0, 1)?;
        rb_self.region.ptr(ruby)?;
        match opt_int_arg(ruby, argv.first())? {
            Some(len) => rb_self.bytes_at(ruby, 0, len),
            None => rb_self.string_at(ruby, 0, None),
        }
    }

    fn put_string(ruby: &Ruby, rb_self: Obj<Self>, offset: Value, str: Value) -> Result<Obj<Self>, Error> {
        rb_self.region.ptr(ruby)?;
        rb_self.put_string_at(ruby, int_arg(ruby, offset)?, str)?;
        Ok(rb_self)
    }

    /// FFI's `write_string(str, len = nil)`: the bytes of `str` (or its first `len`) at offset 0, without
    /// a terminating NUL.
    fn write_string(ruby: &Ruby, rb_self: Obj<Self>, argv: &[Value]) -> Result<Obj<Self>, Error> {
        args::arity(ruby, argv, 1, 2)?;
        rb_self.put_bytes_at(ruby, 0, argv[0], None, argv.get(1))?;
        Ok(rb_self)
    }

    fn clear(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Obj<Self>, Error> {
        rb_self.region.fill(ruby, 0, rb_self.region.len(), 0)?;
        Ok(rb_self)
    }

    // Objects: the byte copying behind `put_object` / `get_object` (Marshal runs in Ruby).

    /// Write `OBJECT_MAGIC`, the payload's length and the payload at `offset`, or raise `IndexError` and
    /// write nothing if they do not all fit (`ArgumentError` if `get_object` could not read it back: see
    /// [`marshal::check`]).
    fn put_object_bytes(ruby: &Ruby, rb_self: Obj<Self>, offset: Value, payload: RString) -> Result<Obj<Self>, Error> {
        rb_self.region.ptr(ruby)?;
        let offset = int_arg(ruby, offset)?;
        let len = payload.len();
        let total = len as i128 + OBJECT_HEADER as i128;
        let too_big = |ruby: &Ruby| {
            let msg = format!(
                "object of {len} bytes (plus its {OBJECT_HEADER}-byte header) does not fit at offset {offset} \
                 (size {})",
                rb_self.region.len()
            );
            Error::new(ruby.exception_index_error(), msg)
        };
        // Open (checked above), so `at` can only fail with an IndexError: say what did not fit.
        let at = rb_self.at(ruby, offset, total).map_err(|_| too_big(ruby))?;
        let len32 = u32::try_from(len).map_err(|_| too_big(ruby))?;
        // What `get_object` would refuse is not written either (`marshal::check_dump`: at memcpy cost for a
        // dump that cannot nest too deeply).
        // SAFETY: no Ruby code runs while `payload` is read here.
        let bytes = unsafe { payload.as_slice() };
        marshal::check_dump(bytes).map_err(|msg| errors::arg(ruby, msg))?;
        let mut header = [0u8; OBJECT_HEADER];
        header[..4].copy_from_slice(OBJECT_MAGIC);
        header[4..].copy_from_slice(&len32.to_le_bytes());
        rb_self.region.write(ruby, at, &header)?;
        // SAFETY: used only by `write` (no Ruby code runs), so `payload` cannot change meanwhile.
        rb_self.region.write(ruby, at + OBJECT_HEADER, bytes)?;
        rb_self.checked.set((at, len, marshal::fingerprint(bytes)));
        Ok(rb_self)
    }

    /// The Marshal stream of the object at `offset`: the payload stored by `put_object_bytes` there, or,
    /// without a header, every byte from `offset` to the end. A header whose length runs past the end of
    /// the segment, or a stream that `Marshal.load` could not take safely (see [`marshal::check`]), raises
    /// `ArgumentError`. The bytes are copied first and checked in the copy, so another process writing the
    /// segment meanwhile cannot slip anything past the check.
    fn get_object_bytes(ruby: &Ruby, rb_self: &Self, offset: Value) -> Result<RString, Error> {
        rb_self.region.ptr(ruby)?;
        let at = rb_self.at(ruby, int_arg(ruby, offset)?, 0)?;
        let room = rb_self.region.len() - at;
        let mut header = [0u8; OBJECT_HEADER];
        let framed = room >= OBJECT_HEADER && {
            rb_self.region.read(ruby, at, &mut header)?;
            &header[..4] == OBJECT_MAGIC
        };
        let stream = if framed {
            let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if len > room - OBJECT_HEADER {
                let msg = format!(
                    "object header at offset {at} claims {len} bytes, but only {} follow it",
                    room - OBJECT_HEADER
                );
                return Err(errors::arg(ruby, msg));
            }
            rb_self.region.with_bytes(ruby, at + OBJECT_HEADER, len, |b| ruby.str_from_slice(b))?
        } else {
            rb_self.region.with_bytes(ruby, at, room, |b| ruby.str_from_slice(b))?
        };
        // SAFETY: `stream` is our own fresh copy and no Ruby code runs while it is read here.
        let bytes = unsafe { stream.as_slice() };
        let seen = (at, bytes.len(), marshal::fingerprint(bytes));
        if rb_self.checked.get() != seen {
            marshal::check(bytes).map_err(|msg| errors::arg(ruby, msg))?;
            rb_self.checked.set(seen);
        }
        Ok(stream)
    }

    // Readers and lifecycle.

    fn size(&self) -> usize {
        self.region.len()
    }

    fn type_name(ruby: &Ruby, rb_self: &Self) -> Symbol {
        ruby.to_symbol(rb_self.ty.name)
    }

    fn type_size(&self) -> usize {
        self.ty.size
    }

    fn count(&self) -> usize {
        self.count
    }

    fn address(ruby: &Ruby, rb_self: &Self) -> Result<usize, Error> {
        Ok(rb_self.region.ptr(ruby)? as usize)
    }

    fn close(&self) {
        self.region.close()
    }

    fn is_closed(&self) -> bool {
        self.region.is_closed()
    }

    fn inspect(rb_self: Obj<Self>) -> String {
        let closed = if rb_self.region.is_closed() { " (closed)" } else { "" };
        format!(
            "#<{} type=:{} count={} size={}{closed}>",
            args::class_name(rb_self.as_value()),
            rb_self.ty.name,
            rb_self.count,
            rb_self.region.len()
        )
    }

    // SharedArray: element access by index, dispatched on the element type.

    fn aref(ruby: &Ruby, rb_self: &Self, index: Value) -> Result<Value, Error> {
        let at = rb_self.element(ruby, index)?;
        (rb_self.ty.load)(rb_self, ruby, at)
    }

    fn aset(ruby: &Ruby, rb_self: &Self, index: Value, v: Value) -> Result<Value, Error> {
        let at = rb_self.element(ruby, index)?;
        (rb_self.ty.store)(rb_self, ruby, at, v)?;
        Ok(v)
    }

    fn to_a(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        (rb_self.ty.load_all)(rb_self, ruby, 0, rb_self.count)
    }
}

/// The type table: every name, its Rust type (this platform's C type). Generates the `kind` markers, the
/// runtime [`TYPES`] table and `define_accessors`.
macro_rules! types {
    ($($name:ident: $t:ty),* $(,)?) => {
        mod kind {
            #![allow(non_camel_case_types)]
            use super::*;
            $(
                pub struct $name;
                impl Kind for $name {
                    type T = $t;
                    const NAME: &'static str = stringify!($name);
                }
            )*
        }

        static TYPES: &[TypeInfo] = &[$(
            TypeInfo {
                name: stringify!($name),
                size: size_of::<$t>(),
                load: SharedMemory::load::<kind::$name>,
                store: SharedMemory::store::<kind::$name>,
                load_all: SharedMemory::load_all::<kind::$name>,
            },
        )*];

        fn define_accessors(c: RClass) -> Result<(), Error> {
            $(
                c.define_method(concat!("get_", stringify!($name)), method!(SharedMemory::get::<kind::$name>, 1))?;
                c.define_method(concat!("put_", stringify!($name)), method!(SharedMemory::put::<kind::$name>, 2))?;
                c.define_method(concat!("read_", stringify!($name)), method!(SharedMemory::read::<kind::$name>, 0))?;
                c.define_method(concat!("write_", stringify!($name)), method!(SharedMemory::write::<kind::$name>, 1))?;
                c.define_method(
                    concat!("get_array_of_", stringify!($name)),
                    method!(SharedMemory::get_array::<kind::$name>, 2),
                )?;
                c.define_method(
                    concat!("put_array_of_", stringify!($name)),
                    method!(SharedMemory::put_array::<kind::$name>, 2),
                )?;
                c.define_method(
                    concat!("read_array_of_", stringify!($name)),
                    method!(SharedMemory::read_array::<kind::$name>, 1),
                )?;
                c.define_method(
                    concat!("write_array_of_", stringify!($name)),
                    method!(SharedMemory::write_array::<kind::$name>, 1),
                )?;
            )*
            Ok(())
        }
    };
}

types! {
    char: i8, uchar: u8,
    short: c_short, ushort: c_ushort,
    int: c_int, uint: c_uint,
    long: c_long, ulong: c_ulong,
    long_long: c_longlong, ulong_long: c_ulonglong,
    int8: i8, uint8: u8, int16: i16, uint16: u16, int32: i32, uint32: u32, int64: i64, uint64: u64,
    float: f32, double: f64,
    size_t: usize, pointer: Addr,
}

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    let c = m.define_class("SharedMemory", ruby.class_object())?;
    c.define_singleton_method("new", method!(SharedMemory::new, -1))?;
    c.define_singleton_method("_new_named", method!(SharedMemory::new_named, -1))?;
    define_accessors(c)?;
    c.define_method("get_bytes", method!(SharedMemory::get_bytes, 2))?;
    c.define_method("put_bytes", method!(SharedMemory::put_bytes, -1))?;
    c.define_method("read_bytes", method!(SharedMemory::read_bytes, 1))?;
    c.define_method("write_bytes", method!(SharedMemory::write_bytes, -1))?;
    c.define_method("get_string", method!(SharedMemory::get_string, -1))?;
    c.define_method("put_string", method!(SharedMemory::put_string, 2))?;
    c.define_method("read_string", method!(SharedMemory::read_string, -1))?;
    c.define_method("write_string", method!(SharedMemory::write_string, -1))?;
    c.define_method("clear", method!(SharedMemory::clear, 0))?;
    c.define_private_method("_put_object_bytes", method!(SharedMemory::put_object_bytes, 2))?;
    c.define_private_method("_get_object_bytes", method!(SharedMemory::get_object_bytes, 1))?;
    c.define_method("size", method!(SharedMemory::size, 0))?;
    c.define_method("type", method!(SharedMemory::type_name, 0))?;
    c.define_method("type_size", method!(SharedMemory::type_size, 0))?;
    c.define_method("count", method!(SharedMemory::count, 0))?;
    c.define_method("address", method!(SharedMemory::address, 0))?;
    c.define_method("close", method!(SharedMemory::close, 0))?;
    c.define_method("closed?", method!(SharedMemory::is_closed, 0))?;
    c.define_method("inspect", method!(SharedMemory::inspect, 0))?;

    let a = m.define_class("SharedArray", c)?;
    a.define_singleton_method("new", method!(SharedMemory::new_array, -1))?;
    a.define_singleton_method("_new_named", method!(SharedMemory::new_array_named, -1))?;
    a.define_method("[]", method!(SharedMemory::aref, 1))?;
    a.define_method("[]=", method!(SharedMemory::aset, 2))?;
    a.define_method("to_a", method!(SharedMemory::to_a, 0))?;
    a.define_method("length", method!(SharedMemory::count, 0))?;
    Ok(())
}
