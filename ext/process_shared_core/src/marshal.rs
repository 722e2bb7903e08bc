//! Marshal streams: what Ruby's `Marshal.load` may be given safely. Pure Rust (the binding only maps the
//! refusal to `ArgumentError`): a walk of a stream that mirrors `r_object` in Ruby's marshal.c with an
//! explicit stack, and a fingerprint that lets bytes already checked skip a second walk.

/// Deepest nesting [`check`] lets through, in `Marshal.load` recursion levels (each element,
/// instance variable value and wrapper is one level deeper than its container).
pub const MAX_DEPTH: u32 = 1000;

/// How many levels one level inside a Hash *key* counts as: loading a key hashes it, which recurses
/// through the whole key with much larger stack frames than the loader's own.
pub const KEY_WEIGHT: u32 = 6;

/// One piece of a Marshal stream still to be read by [`check`].
#[derive(Clone, Copy)]
enum Part {
    /// One object (`r_object`).
    Object,
    /// One symbol (`r_symbol`): `:` and its bytes (after `I`: then instance variables), or `;` and an index.
    Symbol,
    /// `n` more objects (Array elements).
    Objects(u64),
    /// `n` more key/value pairs (Hash entries); levels inside keys weigh [`KEY_WEIGHT`].
    Entries(u64),
    /// `n` more symbol/object pairs (instance variables, Struct members).
    Pairs(u64),
    /// A count of instance variables, then that many pairs; a count of 0 or below means none.
    Ivars,
    /// A Struct's member count, then that many pairs.
    Members,
    /// A length-prefixed byte string (a `_dump` string).
    Bytes,
}

/// Why [`check`]'s walk ended early.
enum Halt {
    /// The stream ends, or is malformed, here: `Marshal.load` fails at this point by itself.
    Stop,
    /// `Marshal.load` must not be given this stream.
    Refuse(String),
}

/// A cursor over a Marshal stream, with the bytes that pending elements still need.
struct MarshalWalk<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bytes the pending elements of the enclosing containers need at least (1 per object, 2 per pair).
    reserved: u64,
}

impl MarshalWalk<'_> {
    fn byte(&mut self) -> Result<u8, Halt> {
        let b = *self.data.get(self.pos).ok_or(Halt::Stop)?;
        self.pos += 1;
        Ok(b)
    }

    /// marshal.c's `r_long`.
    fn long(&mut self) -> Result<i64, Halt> {
        let c = i64::from(self.byte()? as i8);
        Ok(match c {
            0 => 0,
            5..=127 => c - 5,
            -128..=-5 => c + 5,
            1..=4 => {
                let mut x = 0i64;
                for i in 0..c {
                    x |= i64::from(self.byte()?) << (8 * i);
                }
                x
            }
            _ => {
                let mut x = -1i64;
                for i in 0..-c {
                    x &= !(0xff << (8 * i));
                    x |= i64::from(self.byte()?) << (8 * i);
                }
                x
            }
        })
    }

    /// Skip `n` bytes.
    fn skip(&mut self, n: i64) -> Result<(), Halt> {
        match usize::try_from(n) {
            Ok(n) if n <= self.data.len() - self.pos => {
                self.pos += n;
                Ok(())
            }
            _ => Err(Halt::Stop),
        }
    }

    /// marshal.c's `r_bytes`: a length, then that many bytes.
    fn bytes(&mut self) -> Result<(), Halt> {
        let n = self.long()?;
        self.skip(n)
    }

    /// Reserve `n` elements of at least `size` bytes each (a negative `n`: `Marshal.load` fails), or
    /// refuse the stream if the bytes left cannot hold them.
    fn claim(&mut self, n: i64, size: u64) -> Result<u64, Halt> {
        let n = u64::try_from(n).map_err(|_| Halt::Stop)?;
        let left = ((self.data.len() - self.pos) as u64).saturating_sub(self.reserved);
        match n.checked_mul(size) {
            Some(need) if need <= left => {
                self.reserved += need;
                Ok(n)
            }
            _ => Err(Halt::Refuse("marshal data too short".to_string())),
        }
    }

    /// Read the next part, pushing what it contains. `depth` is the nesting level of the objects `part`
    /// holds; `key` tells whether they are inside a Hash key.
    fn step(&mut self, stack: &mut Vec<(Part, u32, bool)>, part: Part, depth: u32, key: bool) -> Result<(), Halt> {
        if matches!(part, Part::Object | Part::Symbol) && depth > MAX_DEPTH {
            let msg = format!("marshal data too deeply nested (more than {MAX_DEPTH} levels)");
            return Err(Halt::Refuse(msg));
        }
        let inner = depth.saturating_add(if key { KEY_WEIGHT } else { 1 });
        match part {
            Part::Objects(0) | Part::Entries(0) | Part::Pairs(0) => {}
            Part::Objects(n) => {
                self.reserved = self.reserved.saturating_sub(1);
                stack.extend([(Part::Objects(n - 1), depth, key), (Part::Object, depth, key)]);
            }
            Part::Entries(n) => {
                self.reserved = self.reserved.saturating_sub(2);
                stack.extend([
                    (Part::Entries(n - 1), depth, key),
                    (Part::Object, depth, key),
                    (Part::Object, depth, true),
                ]);
            }
            Part::Pairs(n) => {
                self.reserved = self.reserved.saturating_sub(2);
                stack.extend([
                    (Part::Pairs(n - 1), depth, key),
                    (Part::Object, depth, key),
                    (Part::Symbol, depth, key),
                ]);
            }
            Part::Ivars => {
                let n = self.long()?;
                if n > 0 {
                    let n = self.claim(n, 2)?;
                    stack.push((Part::Pairs(n), depth, key));
                }
            }
            Part::Members => {
                let n = self.long()?;
                let n = self.claim(n, 2)?;
                stack.push((Part::Pairs(n), depth, key));
            }
            Part::Bytes => self.bytes()?,
            Part::Symbol => {
                let mut ivars = false;
                loop {
                    match self.byte()? {
                        b'I' => ivars = true,
                        b':' => {
                            self.bytes()?;
                            if ivars {
                                stack.push((Part::Ivars, inner, key));
                            }
                            break;
                        }
                        b';' if !ivars => {
                            self.long()?;
                            break;
                        }
                        _ => return Err(Halt::Stop),
                    }
                }
            }
            Part::Object => match self.byte()? {
                b'0' | b'T' | b'F' => {}
                b'i' | b'@' | b';' => {
                    self.long()?;
                }
                b':' | b'"' | b'f' | b'c' | b'm' | b'M' => self.bytes()?,
                b'/' => {
                    self.bytes()?;
                    self.byte()?;
                }
                b'l' => {
                    self.byte()?;
                    // Ruby 3.3 reads a negative length as no digits (the Integer 0) and goes on; 3.1 and
                    // 3.4 fail there. Walk on, as 3.3 does, so what follows is checked too.
                    let n = self.long()?.max(0);
                    self.skip(n.checked_mul(2).ok_or(Halt::Stop)?)?;
                }
                b'[' => {
                    let n = self.long()?;
                    let n = self.claim(n, 1)?;
                    stack.push((Part::Objects(n), inner, key));
                }
                t @ (b'{' | b'}') => {
                    // A negative size would be taken as a huge unsigned one: refuse it too.
                    let n = self.long()?;
                    let n = self.claim(n, 2).map_err(|h| match h {
                        Halt::Stop => Halt::Refuse(format!("negative hash size {n} in marshal data")),
                        h => h,
                    })?;
                    if t == b'}' {
                        stack.push((Part::Object, inner, key)); // the default value, read after the entries
                    }
                    stack.push((Part::Entries(n), inner, key));
                }
                b'I' => stack.extend([(Part::Ivars, inner, key), (Part::Object, inner, key)]),
                b'e' | b'C' | b'U' | b'd' => stack.extend([(Part::Object, inner, key), (Part::Symbol, inner, key)]),
                b'o' => stack.extend([(Part::Ivars, inner, key), (Part::Symbol, inner, key)]),
                b'S' => stack.extend([(Part::Members, inner, key), (Part::Symbol, inner, key)]),
                b'u' => stack.extend([(Part::Bytes, inner, key), (Part::Symbol, inner, key)]),
                _ => return Err(Halt::Stop),
            },
        }
        Ok(())
    }
}

/// Refuse (with the `ArgumentError` message) a Marshal stream that `Marshal.load` of this Ruby would not
/// fail on cleanly:
/// - a count (Array or Hash size, number of instance variables or Struct members) larger than the bytes
///   left can hold, counting the bytes the enclosing objects' other elements still need: Ruby 3.1
///   allocates for the count before it reads the elements, so 7 bytes claiming a Hash of 2^30 entries
///   raise `NoMemoryError`, or take seconds and gigabytes (newer Rubies refuse these the same way, with
///   the same message);
/// - nesting deeper than [`MAX_DEPTH`] levels, which can overflow the machine stack of a thread
///   or a fiber (`SystemStackError`).
///
/// Anything else passes, valid or not: where this walk cannot follow the stream, `Marshal.load` fails at
/// that same point with its own `TypeError` or `ArgumentError`. The walk mirrors `r_object` in Ruby's
/// marshal.c, with an explicit stack, in time linear in the stream's length.
pub fn check(data: &[u8]) -> Result<(), String> {
    let mut w = MarshalWalk { data, pos: 0, reserved: 0 };
    // Marshal.load itself rejects any version but 4.0 to 4.8.
    match (w.byte(), w.byte()) {
        (Ok(4), Ok(minor)) if minor <= 8 => {}
        _ => return Ok(()),
    }
    let mut stack = vec![(Part::Object, 1, false)];
    while let Some((part, depth, key)) = stack.pop() {
        match w.step(&mut stack, part, depth, key) {
            Ok(()) => {}
            Err(Halt::Stop) => return Ok(()),
            Err(Halt::Refuse(msg)) => return Err(msg),
        }
    }
    Ok(())
}

/// [`check`] for a stream `Marshal.dump` wrote with a depth limit of [`MAX_DEPTH`] (what `put_object`
/// writes). A dump is well formed, so only its nesting can fail the check: plain nesting is bounded by the
/// dump's own limit and only Hash keys weigh more, so the walk runs only if the stream may hold a Hash (a
/// `{` or `}` byte) and is long enough to nest too deeply (each level takes at least two bytes and weighs at
/// most [`KEY_WEIGHT`]). Big dumps cost a byte scan, not a walk.
pub fn check_dump(data: &[u8]) -> Result<(), String> {
    let could_nest_too_deep = data.len() / 2 * KEY_WEIGHT as usize > MAX_DEPTH as usize;
    if could_nest_too_deep && data.iter().any(|&b| b == b'{' || b == b'}') {
        check(data)
    } else {
        Ok(())
    }
}

/// A fast 64-bit fingerprint of a byte string (FxHash over 8-byte words, then a murmur3 finaliser). Not
/// for adversaries: it only tells whether bytes read back are the very bytes already checked, and a
/// mismatch just means the full check runs.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
