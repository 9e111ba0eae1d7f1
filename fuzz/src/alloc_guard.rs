//! The system allocator, but a single allocation above [`LIMIT`] aborts.
//!
//! libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks, and the
//! fuzz builds run without sanitizers (stable Rust has none on this target
//! through cargo-fuzz's `--sanitizer none`); its `-rss_limit_mb` only sees
//! memory actually touched. A length field read from the input and passed
//! to `Vec::with_capacity` is exactly the bug to catch, so catch it here:
//! no parser of ours needs 256 MiB in one piece for a fuzz-sized input.

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest single allocation allowed.
const LIMIT: usize = 256 << 20;

struct Guard;

#[global_allocator]
static GLOBAL: Guard = Guard;

fn check(size: usize) {
    if size > LIMIT {
        // No allocation (and so no formatting) here: write a fixed message
        // and abort, which libFuzzer reports as a crash with its input.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"alloc_guard: single allocation above 256 MiB\n",
        );
        std::process::abort();
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the guard only
// looks at the requested size first.
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
