//! Links every test kernel (and the boot benchmark's reference) with the
//! kernel's linker script, so that they are laid out as the kernel is, and
//! relinks them when it changes.

fn main() {
    println!("cargo:rerun-if-changed=../../linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg=-T{dir}/../../linker.ld");
    }
}
