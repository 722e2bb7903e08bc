//! The element types by name (`:int`, `:uint32`, `:pointer`, ...): the `types!` table, which generates a
//! zero-sized marker per name, the runtime [`TYPES`] table and the registration of the typed accessors, and
//! the typed reads and writes of the segment they dispatch to.

use std::ffi::{c_int, c_long, c_longlong, c_short, c_uint, c_ulong, c_ulonglong, c_ushort};
use std::mem::size_of;

use magnus::{method, prelude::*, typed_data::Obj, Error, RArray, RClass, Ruby, Value};

use super::scalar::{int_arg, Addr, Scalar};
use super::SharedMemory;

/// One type name (`:int`, `:int32`, ...), as a zero-sized marker carrying its Rust type.
trait Kind {
    type T: Scalar;
    const NAME: &'static str;
    const SIZE: usize = size_of::<Self::T>();
}

/// A type name at run time: the element type of a SharedMemory, with its per-type operations.
pub(super) struct TypeInfo {
    pub(super) name: &'static str,
    pub(super) size: usize,
    pub(super) load: fn(&SharedMemory, &Ruby, usize) -> Result<Value, Error>,
    pub(super) store: fn(&SharedMemory, &Ruby, usize, Value) -> Result<(), Error>,
    pub(super) load_all: fn(&SharedMemory, &Ruby, usize, usize) -> Result<RArray, Error>,
}

impl TypeInfo {
    pub(super) fn named(name: &str) -> Option<&'static TypeInfo> {
        TYPES.iter().find(|t| t.name == name)
    }
}

impl SharedMemory {
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

        pub(super) static TYPES: &[TypeInfo] = &[$(
            TypeInfo {
                name: stringify!($name),
                size: size_of::<$t>(),
                load: SharedMemory::load::<kind::$name>,
                store: SharedMemory::store::<kind::$name>,
                load_all: SharedMemory::load_all::<kind::$name>,
            },
        )*];

        pub(super) fn define_accessors(c: RClass) -> Result<(), Error> {
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
