//! Property tests of the Marshal check (`process_shared_core::marshal`), which decides what
//! `SharedMemory#get_object` may hand to Ruby's `Marshal.load`. Streams are written here by a small encoder
//! of Marshal 4.8 (nil, true, false, Fixnums, Strings, Symbols, Arrays, Hashes), so the properties run
//! without Ruby; spec/bad_input_spec.rb checks the same streams against each Ruby's real `Marshal.load`.
//!
//! Reproducing a failure: rerun with `PROPTEST_RNG_SEED=<seed>` (printed with the failure).

use proptest::prelude::*;

use process_shared_core::marshal::{check, check_dump, fingerprint, KEY_WEIGHT, MAX_DEPTH};

/// A Ruby value that the encoder can write.
#[derive(Clone, Debug)]
enum V {
    Nil,
    True,
    False,
    Int(i32),
    Str(Vec<u8>),
    Sym(String),
    Arr(Vec<V>),
    Hash(Vec<(V, V)>),
}

/// marshal.c's `w_long` (Fixnums fit in 4 bytes here).
fn w_long(out: &mut Vec<u8>, x: i64) {
    match x {
        0 => out.push(0),
        1..=122 => out.push((x + 5) as u8),
        -123..=-1 => out.push(((x - 5) & 0xff) as u8),
        _ => {
            let mut bytes = Vec::new();
            let mut v = x;
            loop {
                bytes.push((v & 0xff) as u8);
                v >>= 8;
                if (x >= 0 && v == 0) || (x < 0 && v == -1) {
                    break;
                }
            }
            let n = bytes.len() as i8;
            out.push(if x >= 0 { n as u8 } else { (-n) as u8 });
            out.extend(bytes);
        }
    }
}

fn encode_into(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Nil => out.push(b'0'),
        V::True => out.push(b'T'),
        V::False => out.push(b'F'),
        V::Int(i) => {
            out.push(b'i');
            w_long(out, i64::from(*i));
        }
        V::Str(s) => {
            out.push(b'"');
            w_long(out, s.len() as i64);
            out.extend(s);
        }
        V::Sym(s) => {
            out.push(b':');
            w_long(out, s.len() as i64);
            out.extend(s.as_bytes());
        }
        V::Arr(items) => {
            out.push(b'[');
            w_long(out, items.len() as i64);
            items.iter().for_each(|i| encode_into(out, i));
        }
        V::Hash(pairs) => {
            out.push(b'{');
            w_long(out, pairs.len() as i64);
            for (k, v) in pairs {
                encode_into(out, k);
                encode_into(out, v);
            }
        }
    }
}

fn encode(v: &V) -> Vec<u8> {
    let mut out = vec![4, 8];
    encode_into(&mut out, v);
    out
}

fn value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        Just(V::Nil),
        Just(V::True),
        Just(V::False),
        any::<i32>().prop_map(V::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(V::Str),
        "[a-z_]{1,12}".prop_map(V::Sym),
    ];
    leaf.prop_recursive(6, 200, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(V::Arr),
            proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(V::Hash),
        ]
    })
}

/// Arrays nested `n` deep around nil: the nil is `Marshal.load`'s level `n + 1`.
fn nested_arrays(n: usize) -> Vec<u8> {
    let mut out = vec![4, 8];
    out.extend(std::iter::repeat_n([b'[', 6], n).flatten()); // 6: w_long(1)
    out.push(b'0');
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// A well-formed stream of modest depth is never refused, by either check.
    #[test]
    fn well_formed_streams_pass(v in value()) {
        let bytes = encode(&v);
        prop_assert_eq!(check(&bytes), Ok(()));
        prop_assert_eq!(check_dump(&bytes), Ok(()));
    }

    /// Any bytes, after a version header or not: the check answers (it never panics, and it reads each
    /// byte at most a bounded number of times: a 4 KiB stream is walked in well under a second).
    #[test]
    fn any_bytes_get_an_answer(mut tail in proptest::collection::vec(any::<u8>(), 0..4096), header in any::<bool>()) {
        if header {
            tail.splice(0..0, [4, 8]);
        }
        let started = std::time::Instant::now();
        let _ = check(&tail);
        let _ = check_dump(&tail);
        prop_assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    /// A count that the bytes left cannot hold (an Array claiming more elements than there are bytes
    /// after it) is refused: Ruby would allocate for the count before reading a single element.
    #[test]
    fn counts_beyond_the_data_are_refused(items in proptest::collection::vec(any::<i32>(), 0..20), extra in 1i64..(1 << 30)) {
        let mut bytes = vec![4, 8, b'['];
        let body: Vec<u8> = {
            let mut b = Vec::new();
            items.iter().for_each(|&i| encode_into(&mut b, &V::Int(i)));
            b
        };
        w_long(&mut bytes, body.len() as i64 + extra);
        bytes.extend(&body);
        prop_assert_eq!(check(&bytes), Err("marshal data too short".to_string()));
    }

    /// A stream's fingerprint is a function of its bytes: equal bytes, equal fingerprints; one byte
    /// changed, another fingerprint.
    #[test]
    fn fingerprints_tell_changed_bytes(bytes in proptest::collection::vec(any::<u8>(), 1..200), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut other = bytes.clone();
        prop_assert_eq!(fingerprint(&bytes), fingerprint(&other));
        let i = at.index(bytes.len());
        other[i] ^= flip;
        prop_assert_ne!(fingerprint(&bytes), fingerprint(&other));
    }
}

#[test]
fn nesting_is_refused_just_past_the_limit() {
    let limit = MAX_DEPTH as usize;
    assert_eq!(check(&nested_arrays(limit - 1)), Ok(())); // the nil is at level MAX_DEPTH
    let refused = check(&nested_arrays(limit)).unwrap_err();
    assert!(refused.contains("too deeply nested"), "{refused}");
    // A dump `Marshal.dump(obj, MAX_DEPTH)` wrote has no Hash here: check_dump lets it through unwalked.
    assert_eq!(check_dump(&nested_arrays(limit - 1)), Ok(()));
}

#[test]
fn levels_inside_hash_keys_weigh_more() {
    // Hashes nested as each other's only key: every level inside a key counts KEY_WEIGHT.
    let levels = |n: usize| {
        let mut out = vec![4, 8];
        out.extend(std::iter::repeat_n([b'{', 6], n).flatten());
        out.push(b'0'); // the innermost key
        out.extend(std::iter::repeat_n(b'0', n)); // each hash's value
        out
    };
    // The outer Hash's key is at level 2, and each Hash inside a key puts its own key KEY_WEIGHT deeper:
    // with n Hashes the innermost key is at level 2 + KEY_WEIGHT * (n - 1).
    let fits = ((MAX_DEPTH - 2) / KEY_WEIGHT + 1) as usize;
    assert_eq!(check(&levels(fits)), Ok(()));
    assert!(check(&levels(fits + 1)).is_err());
    assert!(check_dump(&levels(fits + 1)).is_err()); // a Hash byte: check_dump walks it

    // Nested as values instead, as many Hashes are far from the limit.
    let mut values = vec![4, 8];
    for _ in 0..fits + 1 {
        values.extend([b'{', 6, b'0']); // a Hash of one entry: key nil, then its value
    }
    values.push(b'0');
    assert_eq!(check(&values), Ok(()));
}

#[test]
fn a_negative_bignum_length_does_not_end_the_walk() {
    // Ruby 3.3 reads `l-` with a negative length as 0 and goes on, to the Hash claiming 2**31 - 1 entries.
    let bytes = b"\x04\x08[\x07l-\xfa{\x04\xff\xff\xff\x7f";
    assert_eq!(check(bytes), Err("marshal data too short".to_string()));
}
