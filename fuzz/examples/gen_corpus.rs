//! Writes the seed corpora to `fuzz/corpus/<target>/` (or the directory given).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let n = cove_fuzz::seeds::write_corpora(&dir)?;
    println!("wrote {n} seeds under {}", dir.display());
    Ok(())
}
