//! Objects: the byte copying behind `put_object` / `get_object` (Marshal runs in Ruby). The framing is
//! [`segment::object_header`] / [`segment::object_stream`]; what `Marshal.load` may be given,
//! [`marshal::check`].

use magnus::{typed_data::Obj, Error, RString, Ruby, Value};
use process_shared_core::{marshal, segment};

use super::scalar::int_arg;
use super::SharedMemory;
use crate::helpers::errors;

impl SharedMemory {
    /// Write `segment::OBJECT_MAGIC`, the payload's length and the payload at `offset`, or raise `IndexError` and
    /// write nothing if they do not all fit (`ArgumentError` if `get_object` could not read it back: see
    /// [`marshal::check`]).
    pub(super) fn put_object_bytes(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        offset: Value,
        payload: RString,
    ) -> Result<Obj<Self>, Error> {
        rb_self.region.ptr(ruby)?;
        let offset = int_arg(ruby, offset)?;
        let len = payload.len();
        let total = len as i128 + segment::OBJECT_HEADER as i128;
        let too_big = |ruby: &Ruby| {
            let msg = format!(
                "object of {len} bytes (plus its {}-byte header) does not fit at offset {offset} \
                 (size {})",
                segment::OBJECT_HEADER,
                rb_self.region.len()
            );
            Error::new(ruby.exception_index_error(), msg)
        };
        // Open (checked above), so `at` can only fail with an IndexError: say what did not fit.
        let at = rb_self.at(ruby, offset, total).map_err(|_| too_big(ruby))?;
        let header = segment::object_header(len).ok_or_else(|| too_big(ruby))?;
        // What `get_object` would refuse is not written either (`marshal::check_dump`: at memcpy cost for a
        // dump that cannot nest too deeply).
        // SAFETY: no Ruby code runs while `payload` is read here.
        let bytes = unsafe { payload.as_slice() };
        marshal::check_dump(bytes).map_err(|msg| errors::arg(ruby, msg))?;
        rb_self.region.write(ruby, at, &header)?;
        // SAFETY: used only by `write` (no Ruby code runs), so `payload` cannot change meanwhile.
        rb_self.region.write(ruby, at + segment::OBJECT_HEADER, bytes)?;
        rb_self.checked.set((at, len, marshal::fingerprint(bytes)));
        Ok(rb_self)
    }

    /// The Marshal stream of the object at `offset`: the payload stored by `put_object_bytes` there, or,
    /// without a header, every byte from `offset` to the end. A header whose length runs past the end of
    /// the segment, or a stream that `Marshal.load` could not take safely (see [`marshal::check`]), raises
    /// `ArgumentError`. The bytes are copied first and checked in the copy, so another process writing the
    /// segment meanwhile cannot slip anything past the check.
    pub(super) fn get_object_bytes(ruby: &Ruby, rb_self: &Self, offset: Value) -> Result<RString, Error> {
        rb_self.region.ptr(ruby)?;
        let at = rb_self.at(ruby, int_arg(ruby, offset)?, 0)?;
        let room = rb_self.region.len() - at;
        let mut head = [0u8; segment::OBJECT_HEADER];
        let head = &mut head[..room.min(segment::OBJECT_HEADER)];
        rb_self.region.read(ruby, at, head)?;
        let stream = match segment::object_stream(head, room) {
            Ok(segment::Stream::Framed(len)) => {
                rb_self.region.with_bytes(ruby, at + segment::OBJECT_HEADER, len, |b| ruby.str_from_slice(b))?
            }
            Ok(segment::Stream::Unframed) => rb_self.region.with_bytes(ruby, at, room, |b| ruby.str_from_slice(b))?,
            Err(segment::Overrun { claims, follow }) => {
                let msg = format!("object header at offset {at} claims {claims} bytes, but only {follow} follow it");
                return Err(errors::arg(ruby, msg));
            }
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
}
