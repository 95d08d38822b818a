//! `make bench`: benchmarks of the kernel's hardware-independent code (the
//! framebuffer console and the heap allocator), run on the host against peers
//! measured in the same run, printing figures and ratios. Build with
//! `--release`.

mod allocator;
mod console;

fn main() {
    console::run();
    println!();
    allocator::run();
}
