//! Links the kernel with the project's linker script, and relinks it when
//! the script changes; cargo would not notice. The test kernels link with
//! the same script (tests/kernels/build.rs).

fn main() {
    println!("cargo:rerun-if-changed=../linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/../linker.ld");
    }
}
