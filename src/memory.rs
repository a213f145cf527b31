//! Giving memory back to the system between pieces of work.
//!
//! glibc's allocator keeps what a thread frees in that thread's arena, up to
//! one arena per thread, and returns it to the system only from the top of
//! each heap. A sync decodes and maps pages on tokio's blocking threads and
//! SQLite's statements run on sqlx's worker threads, so after a province's
//! first load each of those arenas holds free memory that no later piece of
//! work asks for again, and the resident set keeps the largest size each
//! arena ever reached. `give_back` asks glibc to return every free page of
//! every arena (`malloc_trim(0)`); other allocators return theirs on their
//! own and it does nothing there.

/// Returns the allocator's free pages to the system; called after an
/// adapter's run and after a reconciliation (README, Benchmark).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under
    // each arena's lock; it takes no pointer and frees nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
