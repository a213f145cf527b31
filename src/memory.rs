//! Giving memory back to the system between pieces of work.
//!
//! glibc's allocator gives each thread an arena (up to eight per core),
//! and freed memory goes back to the arena it came from. glibc returns
//! memory to the system only from the top of a heap. A sync decodes and
//! maps pages on tokio's blocking threads, and SQLite's statements run on
//! sqlx's worker threads. So after a province's first load, their arenas
//! hold free memory, and the resident set keeps the largest size each
//! arena reached. `give_back` asks glibc to return every free page of every
//! arena (`malloc_trim(0)`). On other targets it compiles to nothing.

/// Returns the allocator's free pages to the system. Called after an
/// adapter's run, after every few batches it writes, after each slice of
/// projects a reconciliation judges and after the reconciliation (README,
/// Benchmark).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // each arena's lock; it takes no pointer and frees nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
