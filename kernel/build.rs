//! Relinks every bare-metal binary (the kernel and the test kernels, which all
//! depend on this crate) when the linker script changes; cargo would not notice.

fn main() {
    println!("cargo:rerun-if-changed=../linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
