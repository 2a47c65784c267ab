//! Replaying inputs through a target: the corpus test, and the fuzz binaries when they
//! are built without libFuzzer.

use std::path::{Path, PathBuf};

/// The files under `path` (itself if it is a file), sorted; dot-files are skipped.
pub fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    out
}

/// Runs `target` on every file under `path`; returns how many ran. A failing input
/// panics with its path in the message.
pub fn replay(target: crate::Target, path: &Path) -> usize {
    let files = files(path);
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let result = std::panic::catch_unwind(|| target(&data));
        if let Err(e) = result {
            eprintln!("input {} failed", f.display());
            std::panic::resume_unwind(e);
        }
    }
    files.len()
}

/// `main` of a fuzz binary built without libFuzzer: replays its arguments (files or
/// directories) through target `name`, or its corpus directory when given none. With
/// `COVE_FUZZ_PRINT` set it first prints each input (decoded, for structured targets).
pub fn main(name: &str) {
    let target = crate::target(name).expect("known target");
    let mut args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        args.push(dir.join("corpus").join(name));
        args.push(dir.join("regressions").join(name));
    }
    let mut n = 0;
    for a in &args {
        if std::env::var_os("COVE_FUZZ_PRINT").is_some() {
            for f in files(a) {
                let data = std::fs::read(&f).unwrap_or_default();
                let text = crate::describe(name, &data).unwrap_or_else(|| format!("{data:02x?}"));
                println!("{}:\n{text}", f.display());
            }
        }
        n += replay(target, a);
    }
    println!("{name}: {n} inputs replayed without a failure");
}
