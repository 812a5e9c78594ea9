//! A test-only global allocator that counts allocations per thread, so tests can assert that
//! a hot path allocates nothing, and in the whole process, for paths that run on threads the
//! test does not control (the gateway's workers).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

static PROCESS_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn record() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    PROCESS_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator. The counter only touches
// a thread-local integer and an atomic one, which neither allocate nor re-enter the allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract, passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Returns how many allocations and reallocations `run` made on the current thread.
#[allow(dead_code)] // Not every test binary that includes this file uses both counters.
pub(crate) fn count_allocations<R>(run: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = run();
    let after = ALLOCATIONS.with(Cell::get);
    (after - before, result)
}

/// Returns how many allocations and reallocations every thread of the process made while
/// `run` ran.
#[allow(dead_code)] // Used by the whole-path test binary only.
pub(crate) fn count_process_allocations<R>(run: impl FnOnce() -> R) -> (usize, R) {
    let before = PROCESS_ALLOCATIONS.load(Ordering::SeqCst);
    let result = run();
    let after = PROCESS_ALLOCATIONS.load(Ordering::SeqCst);
    (after - before, result)
}
