//! leakbench's own memory: a long run must not grow it.
//!
//! glibc's malloc keeps freed memory in per-thread arenas. Each cycle of
//! load allocates and frees a few MiB (session buffers, the shards' latency
//! histograms of about 120 KiB each), and the holes left between longer
//! lived objects made the process's RSS creep up cycle after cycle. Two
//! settings stop that: blocks of 64 KiB and more are mapped on their own and
//! unmapped when freed (glibc would otherwise raise that bound as it sees
//! large frees, and carve them from the arenas), and after each cycle the
//! arenas hand their free pages back.

/// Sets the allocator up; call once, before any thread starts.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes glibc's malloc parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// Returns free pages to the system; once per cycle, between loads.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
