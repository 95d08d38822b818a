//! `pack KERNEL UNPACKER OUT`: writes the image the boot media carry (see
//! the library). The Makefile runs it for every image it builds.

use std::{env, fs, path::Path, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let [kernel, unpacker, out] = &args[..] else {
        eprintln!("usage: pack KERNEL_ELF UNPACKER_ELF OUT");
        return ExitCode::FAILURE;
    };
    match run(Path::new(kernel), Path::new(unpacker), Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: pack: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(kernel: &Path, unpacker: &Path, out: &Path) -> Result<(), String> {
    let read = |path: &Path| {
        let bytes = fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
        pack::Elf::parse(&bytes).map_err(|error| format!("{}: {error}", path.display()))
    };
    let packed = pack::pack(&read(kernel)?, &read(unpacker)?)?;
    fs::write(out, packed.to_bytes()).map_err(|error| format!("{}: {error}", out.display()))
}
