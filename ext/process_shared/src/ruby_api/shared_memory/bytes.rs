//! Bounds-checked byte access to a [`Region`] (built on its public API only): every read and write of a
//! `SharedMemory` goes through these, so no offset coming from Ruby can reach memory outside the segment.

use std::fmt::Display;
use std::ptr;

use magnus::{Error, Ruby};

use crate::ruby_api::shared::Region;

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
