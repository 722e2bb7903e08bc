//! `ProcessShared::SharedMemory` — a typed, bounds-checked segment of shared memory with FFI::Pointer's
//! accessor family — and its subclass `ProcessShared::SharedArray`, indexed by element.
//!
//! This file holds the class: its constructors, bounds, readers and registration. The rest, one concern a
//! file, in `shared_memory/`:
//! - `bytes`: the bounds-checked byte access to a [`Region`] that every other access goes through, so no
//!   offset coming from Ruby can reach memory outside the segment;
//! - `scalar`: how each element type converts from and to Ruby and is stored (native byte order, any offset:
//!   no alignment is required), and the decoding of Integer arguments;
//! - `types`: the `types!` table of type names, which generates the runtime type table (used by
//!   `SharedArray#[]`, `#[]=`, `#to_a`) and the eight accessors per type (`get_T`, `put_T`, `read_T`,
//!   `write_T`, `get_array_of_T`, `put_array_of_T`, `read_array_of_T`, `write_array_of_T`);
//! - `strings`: bytes and NUL-terminated strings;
//! - `objects`: the framed Marshal streams behind `put_object` / `get_object`.
//!
//! The layout rules (bounds, element offsets, sizes, object framing) are in [`process_shared_core::segment`].

mod bytes;
mod objects;
mod scalar;
mod strings;
mod types;

use magnus::{prelude::*, typed_data::Obj, Error, Integer, RArray, RClass, RModule, Ruby, Symbol, Value};
use process_shared_core::segment;

use self::scalar::{int_arg, opt_int_arg};
use self::types::{TypeInfo, TYPES};
use super::shared::{self, NamedSpec, Region};
use crate::helpers::args;
use crate::helpers::errors;

#[magnus::wrap(class = "ProcessShared::SharedMemory", free_immediately, size)]
pub struct SharedMemory {
    region: Region,
    ty: &'static TypeInfo,
    count: usize,
    /// (offset, length, fingerprint) of the last object stream this process wrote or checked: reading
    /// back exactly those bytes needs no second [`process_shared_core::marshal::check`] walk.
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
        // Smaller sizes than `segment::byte_size` allows that the system cannot map raise ENOMEM.
        let size = segment::byte_size(count, ty.size).ok_or_else(|| {
            let msg = format!("{count} elements of :{} are too large for memory", ty.name);
            errors::arg(ruby, msg)
        })?;
        // Both fit: `1 <= count <= size <= isize::MAX / 2`.
        let count = count as usize;
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
        segment::span(offset, len, self.region.len()).ok_or_else(|| self.region.index_error(ruby, offset, len))
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
        segment::element(i, self.count, self.ty.size).ok_or_else(|| {
            let n = self.count as i128;
            let msg = format!("index {} outside of array bounds: {}...{n}", index.inspect(), -n);
            Error::new(ruby.exception_index_error(), msg)
        })
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

pub fn init(ruby: &Ruby, m: RModule) -> Result<(), Error> {
    let c = shared::define_class!(ruby, m, "SharedMemory" < ruby.class_object(), SharedMemory {
        constructors;
    });
    types::define_accessors(c)?;
    shared::methods!(c, SharedMemory {
        fn "get_bytes" => get_bytes(2);
        fn "put_bytes" => put_bytes(-1);
        fn "read_bytes" => read_bytes(1);
        fn "write_bytes" => write_bytes(-1);
        fn "get_string" => get_string(-1);
        fn "put_string" => put_string(2);
        fn "read_string" => read_string(-1);
        fn "write_string" => write_string(-1);
        fn "clear" => clear(0);
        private fn "_put_object_bytes" => put_object_bytes(2);
        private fn "_get_object_bytes" => get_object_bytes(1);
        fn "size" => size(0);
        fn "type" => type_name(0);
        fn "type_size" => type_size(0);
        fn "count" => count(0);
        fn "address" => address(0);
        fn "close" => close(0);
        fn "closed?" => is_closed(0);
        fn "inspect" => inspect(0);
    });

    shared::define_class!(ruby, m, "SharedArray" < c, SharedMemory {
        singleton fn "new" => new_array(-1);
        singleton fn "_new_named" => new_array_named(-1);
        fn "[]" => aref(1);
        fn "[]=" => aset(2);
        fn "to_a" => to_a(0);
        fn "length" => count(0);
    });
    Ok(())
}
