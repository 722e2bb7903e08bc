//! Shared-memory arenas: primitives are carved out of 64 KiB shared chunks in runs of 64-byte slots (one
//! cache line each, so neighbours never false-share), instead of a page-sized mapping apiece. A million
//! small primitives take 64 MiB in under a thousand mappings, with no file descriptor; bigger ones (a
//! semaphore with its holder table) take a run of slots of one chunk.
//!
//! The allocator's bookkeeping is process-local; the slots are shared with every child forked afterwards.
//! So a slot is handed out again only if no fork happened since its chunk was mapped: otherwise another
//! process may still be using it, and it is simply never reused (the price of a fork is at most one
//! partly used chunk). After a fork, parent and child each start new chunks, which makes objects created
//! in a child private to that child's family, and makes the two never hand out the same slot.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use crate::sys::process::fork_epoch;
use crate::sys::SharedMapping;

/// Size of one slot: objects take a whole number of slots.
pub const SLOT: usize = 64;
/// Size of one chunk (one mapping).
pub const CHUNK: usize = 64 * 1024;
const SLOTS_PER_CHUNK: usize = CHUNK / SLOT;

/// One slot: the chunk that holds it (kept mapped while the slot is in use) and its address.
#[derive(Debug)]
pub struct Slot {
    chunk: Arc<SharedMapping>,
    index: usize,
    /// How many consecutive slots it spans.
    run: usize,
}

impl Slot {
    /// Start of the slot: 64-byte aligned, [`Slot::len`] bytes, zeroed when handed out.
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: `index < SLOTS_PER_CHUNK`, so the offset stays inside the chunk's CHUNK bytes.
        unsafe { self.chunk.as_ptr().add(self.index * SLOT) }
    }

    /// Its size in bytes (a multiple of [`SLOT`]).
    pub fn len(&self) -> usize {
        self.run * SLOT
    }

    /// Never: a slot spans at least one [`SLOT`].
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The mapping behind the slot.
    pub fn chunk(&self) -> &Arc<SharedMapping> {
        &self.chunk
    }
}

struct State {
    epoch: u64,
    /// The chunk being filled, and how many of its slots were handed out.
    current: Option<(Arc<SharedMapping>, usize)>,
    /// Runs freed since the last fork (all in chunks mapped since then), by length, ready to hand out again.
    free: BTreeMap<usize, Vec<(Arc<SharedMapping>, usize)>>,
    /// Chunks mapped since the last fork (only their slots may be reused).
    fresh: Vec<usize>,
}

/// A process-local allocator of shared slots. One per process is enough ([`Arena::global`]).
pub struct Arena {
    state: Mutex<State>,
}

impl Arena {
    /// An empty arena (maps nothing until the first allocation).
    pub const fn new() -> Arena {
        Arena { state: Mutex::new(State { epoch: 0, current: None, free: BTreeMap::new(), fresh: Vec::new() }) }
    }

    /// The process-wide arena.
    pub fn global() -> &'static Arena {
        static GLOBAL: Arena = Arena::new();
        &GLOBAL
    }

    /// A zeroed run of slots for an object of `size` bytes (at most [`CHUNK`]); `EINVAL` if it is larger.
    pub fn alloc(&self, size: usize) -> io::Result<Slot> {
        if size > CHUNK {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let run = size.div_ceil(SLOT).max(1);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let epoch = fork_epoch();
        if st.epoch != epoch {
            // A fork happened: everything mapped so far may be shared; start over with new chunks.
            st.epoch = epoch;
            st.current = None;
            st.free.clear();
            st.fresh.clear();
        }
        if let Some((chunk, index)) = st.free.get_mut(&run).and_then(Vec::pop) {
            let slot = Slot { chunk, index, run };
            // SAFETY: the run was freed by its only user in this process and, no fork having happened
            // since its chunk was mapped, no other process has it: zeroing it races with nobody.
            unsafe { std::ptr::write_bytes(slot.as_ptr(), 0, slot.len()) };
            return Ok(slot);
        }
        let (chunk, used) = match st.current.take() {
            Some((chunk, used)) if used + run <= SLOTS_PER_CHUNK => (chunk, used),
            _ => {
                // (The rest of a chunk too full for this run is left unused.)
                let chunk = Arc::new(SharedMapping::anonymous(CHUNK)?);
                st.fresh.push(chunk.as_ptr() as usize);
                (chunk, 0)
            }
        };
        st.current = Some((Arc::clone(&chunk), used + run));
        Ok(Slot { chunk, index: used, run })
    }

    /// Give a run back. It is reused only if its chunk was mapped since the last fork; otherwise it may be
    /// in use by another process and is left alone.
    pub fn free(&self, slot: Slot) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.epoch == fork_epoch() && st.fresh.contains(&(slot.chunk.as_ptr() as usize)) {
            st.free.entry(slot.run).or_default().push((slot.chunk, slot.index));
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_aligned_zeroed_and_reused() {
        let a = Arena::new();
        let s1 = a.alloc(24).unwrap();
        let s2 = a.alloc(64).unwrap();
        assert_ne!(s1.as_ptr(), s2.as_ptr());
        assert_eq!(s1.as_ptr() as usize % SLOT, 0);
        // SAFETY: the slot is ours and SLOT bytes long.
        unsafe { std::ptr::write_bytes(s1.as_ptr(), 0xAB, SLOT) };
        let p1 = s1.as_ptr();
        a.free(s1);
        let s3 = a.alloc(8).unwrap();
        assert_eq!(s3.as_ptr(), p1);
        // SAFETY: as above.
        assert!(unsafe { std::slice::from_raw_parts(s3.as_ptr(), SLOT) }.iter().all(|&b| b == 0));
        assert_eq!(a.alloc(65).unwrap().len(), 2 * SLOT);
        assert!(a.alloc(CHUNK + 1).is_err());
    }

    #[test]
    fn runs_do_not_overlap_and_are_reused_by_length() {
        let a = Arena::new();
        let big = a.alloc(4096).unwrap();
        let small = a.alloc(8).unwrap();
        assert_eq!(big.len(), 4096);
        assert!(
            small.as_ptr() as usize >= big.as_ptr() as usize + 4096 || small.chunk().as_ptr() != big.chunk().as_ptr()
        );
        let p = big.as_ptr();
        a.free(big);
        assert_ne!(a.alloc(64).unwrap().as_ptr(), p, "a one-slot object reuses only one-slot runs");
        assert_eq!(a.alloc(4090).unwrap().as_ptr(), p);
    }

    #[test]
    fn many_slots_use_few_mappings() {
        let a = Arena::new();
        let slots: Vec<_> = (0..3 * SLOTS_PER_CHUNK + 1).map(|_| a.alloc(SLOT).unwrap()).collect();
        let mut chunks: Vec<_> = slots.iter().map(|s| s.chunk().as_ptr() as usize).collect();
        chunks.dedup();
        assert_eq!(chunks.len(), 4);
    }
}
