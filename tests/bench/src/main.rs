//! `make bench`: benchmarks of the kernel's hardware-independent code, run on
//! the host against a peer measured in the same run, printing figures and
//! ratios. Build with `--release`.

mod console;

fn main() {
    console::run();
}
