//! Links the unpacker at its window with its own linker script (the kernel's
//! leaves the window free), and relinks it when the script changes.

fn main() {
    println!("cargo:rerun-if-changed=unpack.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/unpack.ld");
    }
}
