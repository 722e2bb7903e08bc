//! Anonymous shared mappings: memory that survives `fork` as *the same* memory in parent and children, with
//! no file descriptor and nothing in `/dev/shm`.

use std::io;
use std::ptr::NonNull;

/// One `MAP_SHARED | MAP_ANONYMOUS` mapping, unmapped (in this process only) on drop.
///
/// Unmapping is process-local: a forked child dropping its copy never affects the parent's view.
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; all concurrent access to its contents goes through atomics or through
// callers that serialise access (the Ruby GVL). Moving the handle between threads is sound.
unsafe impl Send for SharedMapping {}
// SAFETY: as above; `&SharedMapping` only exposes the address and length.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Map `len` bytes (rounded up to whole pages) of zeroed shared memory.
    ///
    /// Errors: `len == 0` or a length that overflows when rounded gives `EINVAL`; the kernel's `ENOMEM`
    /// (or any other `mmap` errno) is returned as is.
    pub fn anonymous(len: usize) -> io::Result<SharedMapping> {
        SharedMapping::map(len, None)
    }

    /// Map `len` bytes (rounded up to whole pages) shared: of the file `fd` from offset 0 (which must be at
    /// least that long), or anonymous zeroed memory.
    pub(crate) fn map(len: usize, fd: Option<libc::c_int>) -> io::Result<SharedMapping> {
        let rounded = whole_pages(len)?;
        let flags = if fd.is_some() { libc::MAP_SHARED } else { libc::MAP_SHARED | libc::MAP_ANONYMOUS };
        // SAFETY: a fresh mapping (of our descriptor, or anonymous) at a kernel-chosen address aliases nothing
        // we own.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), rounded, libc::PROT_READ | libc::PROT_WRITE, flags, fd.unwrap_or(-1), 0)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        // No pre-faulting of anonymous mappings: they live in the kernel's internal shmem, not in the
        // /dev/shm mount, so no filesystem limit can make a later touch fail with SIGBUS; their size is
        // charged to the commit limit here (mmap fails with ENOMEM when the kernel refuses it), and pages
        // are allocated when first touched, so a large region costs only what is used. A named file's pages
        // are reserved by its creator (`ShmFile::set_size`).
        Ok(SharedMapping { ptr, len: rounded })
    }

    /// Start of the mapping (page aligned, so aligned for every primitive type).
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (a whole number of pages).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping has at least one page.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned and nobody can use them after drop. A failure
        // (impossible for a valid range) would only leak address space, so the result is ignored.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// `len` rounded up to whole pages: `EINVAL` for 0 or a length that cannot be mapped.
pub(crate) fn whole_pages(len: usize) -> io::Result<usize> {
    let page = page_size();
    len.checked_add(page - 1)
        .map(|l| l & !(page - 1))
        .filter(|&l| l != 0 && l <= isize::MAX as usize)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The system page size (4096 if `sysconf` fails).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p <= 0 {
        4096
    } else {
        p as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_page_rounded() {
        let m = SharedMapping::anonymous(10).unwrap();
        assert_eq!(m.len(), page_size());
        // SAFETY: the mapping is at least 10 bytes long and freshly zeroed.
        let s = unsafe { std::slice::from_raw_parts(m.as_ptr(), 10) };
        assert!(s.iter().all(|&b| b == 0));
    }

    #[test]
    fn zero_and_huge_lengths_fail_cleanly() {
        assert_eq!(SharedMapping::anonymous(0).unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert!(SharedMapping::anonymous(usize::MAX).is_err());
        assert!(SharedMapping::anonymous(1 << 60).is_err());
    }
}
