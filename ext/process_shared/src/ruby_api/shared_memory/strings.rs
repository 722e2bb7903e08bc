//! Bytes and strings: FFI::Pointer's `get_bytes`, `put_bytes`, `get_string`, `put_string` and their
//! `read_` / `write_` forms at offset 0, and `clear`.

use magnus::{prelude::*, typed_data::Obj, Error, RString, Ruby, Value};

use super::scalar::{int_arg, opt_int_arg};
use super::SharedMemory;
use crate::helpers::args;

impl SharedMemory {
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

    pub(super) fn get_bytes(ruby: &Ruby, rb_self: &Self, offset: Value, len: Value) -> Result<RString, Error> {
        rb_self.region.ptr(ruby)?;
        rb_self.bytes_at(ruby, int_arg(ruby, offset)?, int_arg(ruby, len)?)
    }

    pub(super) fn read_bytes(ruby: &Ruby, rb_self: &Self, len: Value) -> Result<RString, Error> {
        rb_self.region.ptr(ruby)?;
        rb_self.bytes_at(ruby, 0, int_arg(ruby, len)?)
    }

    pub(super) fn put_bytes(ruby: &Ruby, rb_self: Obj<Self>, argv: &[Value]) -> Result<Obj<Self>, Error> {
        args::arity(ruby, argv, 2, 4)?;
        rb_self.region.ptr(ruby)?;
        rb_self.put_bytes_at(ruby, int_arg(ruby, argv[0])?, argv[1], argv.get(2), argv.get(3))?;
        Ok(rb_self)
    }

    pub(super) fn write_bytes(ruby: &Ruby, rb_self: Obj<Self>, argv: &[Value]) -> Result<Obj<Self>, Error> {
        args::arity(ruby, argv, 1, 3)?;
        rb_self.put_bytes_at(ruby, 0, argv[0], argv.get(1), argv.get(2))?;
        Ok(rb_self)
    }

    pub(super) fn get_string(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<RString, Error> {
        args::arity(ruby, argv, 1, 2)?;
        rb_self.region.ptr(ruby)?;
        rb_self.string_at(ruby, int_arg(ruby, argv[0])?, opt_int_arg(ruby, argv.get(1))?)
    }

    /// FFI's `read_string(len = nil)`: `len` bytes, or the bytes up to the first NUL.
    pub(super) fn read_string(ruby: &Ruby, rb_self: &Self, argv: &[Value]) -> Result<RString, Error> {
        args::arity(ruby, argv, 0, 1)?;
        rb_self.region.ptr(ruby)?;
        match opt_int_arg(ruby, argv.first())? {
            Some(len) => rb_self.bytes_at(ruby, 0, len),
            None => rb_self.string_at(ruby, 0, None),
        }
    }

    pub(super) fn put_string(ruby: &Ruby, rb_self: Obj<Self>, offset: Value, str: Value) -> Result<Obj<Self>, Error> {
        rb_self.region.ptr(ruby)?;
        rb_self.put_string_at(ruby, int_arg(ruby, offset)?, str)?;
        Ok(rb_self)
    }

    /// FFI's `write_string(str, len = nil)`: the bytes of `str` (or its first `len`) at offset 0, without
    /// a terminating NUL.
    pub(super) fn write_string(ruby: &Ruby, rb_self: Obj<Self>, argv: &[Value]) -> Result<Obj<Self>, Error> {
        args::arity(ruby, argv, 1, 2)?;
        rb_self.put_bytes_at(ruby, 0, argv[0], None, argv.get(1))?;
        Ok(rb_self)
    }

    pub(super) fn clear(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Obj<Self>, Error> {
        rb_self.region.fill(ruby, 0, rb_self.region.len(), 0)?;
        Ok(rb_self)
    }
}
