//! The layout rules of a `SharedMemory` segment: which accesses lie within it, where an element is, how large
//! a segment of elements may be, and how a stored object is framed. Pure arithmetic (the binding converts the
//! arguments and maps a refusal to `IndexError` or `ArgumentError`).
//!
//! Offsets and lengths come from Ruby as arbitrary Integers, so they are taken here as `i128` (the binding
//! saturates larger ones, which are out of bounds anyway) and may be negative.

/// The first bytes of a stored object: this magic, then the Marshal payload's length (u32 little-endian).
pub const OBJECT_MAGIC: &[u8; 4] = b"PSM1";
/// The length of a stored object's header (magic and length).
pub const OBJECT_HEADER: usize = 8;

/// The offset of an access of `len` bytes at `offset` as a `usize`, if it lies within a segment of `size`
/// bytes (`0 <= offset`, `0 <= len`, `offset + len <= size`).
#[inline]
pub fn span(offset: i128, len: i128, size: usize) -> Option<usize> {
    match offset.checked_add(len) {
        Some(end) if offset >= 0 && len >= 0 && end <= size as i128 => Some(offset as usize),
        _ => None,
    }
}

/// The byte offset of element `index` of `count` elements of `elem_size` bytes each; a negative index counts
/// from the end. `None` when out of range.
#[inline]
pub fn element(index: i128, count: usize, elem_size: usize) -> Option<usize> {
    let n = count as i128;
    let j = if index < 0 { index + n } else { index };
    (0..n).contains(&j).then(|| j as usize * elem_size)
}

/// The size in bytes of `count` elements of `elem_size` bytes, if a mapping could ever be that large: no
/// address space reaches 2^62 bytes (x86_64: 2^47, or 2^56 with 5-level paging), and near `isize::MAX`
/// rounding up to whole pages would overflow. `count` must be at least 1 (the caller checks).
pub fn byte_size(count: i128, elem_size: usize) -> Option<usize> {
    count.checked_mul(elem_size as i128).filter(|&s| s <= isize::MAX as i128 / 2).map(|s| s as usize)
}

/// The header of a stored object whose Marshal payload has `len` bytes; `None` beyond `u32::MAX`.
pub fn object_header(len: usize) -> Option<[u8; OBJECT_HEADER]> {
    let len32 = u32::try_from(len).ok()?;
    let mut header = [0u8; OBJECT_HEADER];
    header[..4].copy_from_slice(OBJECT_MAGIC);
    header[4..].copy_from_slice(&len32.to_le_bytes());
    Some(header)
}

/// Where the Marshal stream of an object stored at some offset lies, relative to that offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Stream {
    /// `len` bytes after a header (at relative offset [`OBJECT_HEADER`]).
    Framed(usize),
    /// No header: every byte from the offset to the end of the segment.
    Unframed,
}

/// A header that claims more bytes than follow it.
#[derive(Debug, PartialEq, Eq)]
pub struct Overrun {
    /// The payload length the header claims.
    pub claims: usize,
    /// The bytes that follow the header, up to the end of the segment.
    pub follow: usize,
}

/// Read the framing of an object at an offset with `room` bytes up to the end of the segment, whose first
/// bytes are `head` (at least [`OBJECT_HEADER`] of them when `room` has that many).
pub fn object_stream(head: &[u8], room: usize) -> Result<Stream, Overrun> {
    if room < OBJECT_HEADER || head.len() < OBJECT_HEADER || &head[..4] != OBJECT_MAGIC {
        return Ok(Stream::Unframed);
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let follow = room - OBJECT_HEADER;
    if len > follow {
        return Err(Overrun { claims: len, follow });
    }
    Ok(Stream::Framed(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_within_the_segment_only() {
        assert_eq!(span(0, 8, 8), Some(0));
        assert_eq!(span(8, 0, 8), Some(8));
        assert_eq!(span(7, 2, 8), None);
        assert_eq!(span(-1, 1, 8), None);
        assert_eq!(span(0, -1, 8), None);
        assert_eq!(span(i128::MAX, 1, 8), None);
        assert_eq!(span(1, i128::MAX, 8), None);
    }

    #[test]
    fn elements_count_from_either_end() {
        assert_eq!(element(0, 4, 4), Some(0));
        assert_eq!(element(3, 4, 4), Some(12));
        assert_eq!(element(-1, 4, 4), Some(12));
        assert_eq!(element(-4, 4, 4), Some(0));
        assert_eq!(element(4, 4, 4), None);
        assert_eq!(element(-5, 4, 4), None);
        assert_eq!(element(i128::MIN, 4, 4), None);
    }

    #[test]
    fn byte_sizes_stay_mappable() {
        assert_eq!(byte_size(4, 8), Some(32));
        assert_eq!(byte_size(isize::MAX as i128 / 2, 1), Some(isize::MAX as usize / 2));
        assert_eq!(byte_size(isize::MAX as i128 / 2 + 1, 1), None);
        assert_eq!(byte_size(i128::MAX, 8), None);
    }

    #[test]
    fn objects_frame_and_unframe() {
        let header = object_header(5).unwrap();
        assert_eq!(&header, b"PSM1\x05\0\0\0");
        assert_eq!(object_stream(&header, 13), Ok(Stream::Framed(5)));
        assert_eq!(object_stream(&header, 12), Err(Overrun { claims: 5, follow: 4 }));
        assert_eq!(object_stream(&header[..7], 7), Ok(Stream::Unframed));
        assert_eq!(object_stream(b"\x04\x08i\x06\0\0\0\0", 8), Ok(Stream::Unframed));
        assert_eq!(object_header(u32::MAX as usize + 1), None);
        assert_eq!(
            object_stream(&object_header(u32::MAX as usize).unwrap(), 8),
            Err(Overrun { claims: u32::MAX as usize, follow: 0 })
        );
    }
}
