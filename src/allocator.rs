//! The allocator of the static (musl) builds: large blocks straight from
//! the kernel. sled allocates 41 zeroed timing histograms of 512 KiB when
//! the index opens; glibc hands such blocks out as fresh anonymous pages
//! that stay unbacked until written, but the musl build had them resident:
//! 28 MiB of a 32 MiB server at rest, against 1 MiB with glibc. Blocks of
//! [`DIRECT_FROM`] bytes or more are mapped and unmapped here instead, so
//! untouched pages cost nothing; smaller ones go to the C allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Below this, the C allocator's pools are cheaper than a system call.
const DIRECT_FROM: usize = 256 * 1024;

/// Pages are at least this aligned.
const PAGE_ALIGN: usize = 4096;

pub struct LargeBlocksMapped;

fn direct(layout: &Layout) -> bool {
    layout.size() >= DIRECT_FROM && layout.align() <= PAGE_ALIGN
}

fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no memory of ours; the result is checked below.
    let mapped = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        mapped.cast()
    }
}

// SAFETY: whether a block is mapped here or by `System` depends only on its
// layout's size and alignment, which the caller passes unchanged to
// `dealloc` (GlobalAlloc's contract), so each block is released by the one
// that made it. Mapped blocks are page-aligned (so any alignment up to
// PAGE_ALIGN holds), zero-filled by the kernel (so `alloc_zeroed` holds),
// and `size` bytes long, as `munmap` is then told.
unsafe impl GlobalAlloc for LargeBlocksMapped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if direct(&layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's contract for `layout` is passed on.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if direct(&layout) {
            map(layout.size())
        } else {
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if direct(&layout) {
            // SAFETY: `block` was mapped by `map(layout.size())` (see the
            // impl's comment) and is not used after this.
            unsafe { libc::munmap(block.cast(), layout.size()) };
        } else {
            // SAFETY: `block` came from `System` with this layout.
            unsafe { System.dealloc(block, layout) }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to the
        // alignment, does not overflow isize, which is all a Layout needs.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !direct(&layout) && !direct(&new_layout) {
            // SAFETY: both the old and the new block are `System`'s.
            return unsafe { System.realloc(block, layout, new_size) };
        }
        // SAFETY: a new block of the new layout, the common prefix copied
        // between two live blocks that cannot overlap, the old one released
        // with the layout it was made with.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_either_side_of_the_line_keep_their_bytes_through_realloc() {
        let allocator = LargeBlocksMapped;
        let small = Layout::from_size_align(DIRECT_FROM - 1, 8).unwrap();
        for zeroed in [false, true] {
            // SAFETY: every block is used within its size and released
            // with the layout it has at that moment.
            unsafe {
                let block = if zeroed { allocator.alloc_zeroed(small) } else { allocator.alloc(small) };
                assert!(!block.is_null());
                if zeroed {
                    assert!(std::slice::from_raw_parts(block, small.size()).iter().all(|&b| b == 0));
                }
                for i in 0..small.size() {
                    *block.add(i) = (i % 251) as u8;
                }
                // Across the line, up, within mapped blocks, and back down.
                let mut size = small.size();
                let mut block = block;
                for new_size in [DIRECT_FROM + 1, 3 * DIRECT_FROM, DIRECT_FROM - 1] {
                    block = allocator.realloc(block, Layout::from_size_align(size, 8).unwrap(), new_size);
                    assert!(!block.is_null());
                    let kept = size.min(new_size).min(small.size());
                    assert!((0..kept).all(|i| *block.add(i) == (i % 251) as u8), "bytes lost at {new_size}");
                    size = new_size;
                }
                allocator.dealloc(block, Layout::from_size_align(size, 8).unwrap());
            }
        }
        // SAFETY: a mapped block, zeroed, aligned, released as it was made.
        unsafe {
            let large = Layout::from_size_align(2 * DIRECT_FROM, PAGE_ALIGN).unwrap();
            let block = allocator.alloc_zeroed(large);
            assert_eq!(block as usize % PAGE_ALIGN, 0);
            assert!(std::slice::from_raw_parts(block, large.size()).iter().all(|&b| b == 0));
            allocator.dealloc(block, large);
        }
    }
}
