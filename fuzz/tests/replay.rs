//! Replays every committed corpus and regression input through its target, so that
//! `cargo test` on stable covers them without libFuzzer.

use std::path::Path;

fn replay_all(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return 0;
    };
    let mut total = 0;
    for dir in dirs.filter_map(Result::ok) {
        if !dir.path().is_dir() {
            continue;
        }
        let name = dir.file_name().to_string_lossy().into_owned();
        let target = cove_fuzz::target(&name)
            .unwrap_or_else(|| panic!("{kind}/{name} does not name a fuzz target"));
        let n = cove_fuzz::replay::replay(target, &dir.path());
        println!("{kind}/{name}: {n} inputs");
        total += n;
    }
    total
}

#[test]
fn corpus_replays_clean() {
    let n = replay_all("corpus");
    // Every target has committed seeds.
    for (name, _) in cove_fuzz::TARGETS {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(name);
        assert!(
            !cove_fuzz::replay::files(&dir).is_empty(),
            "no corpus for {name}"
        );
    }
    assert!(n > 0);
}

#[test]
fn regressions_replay_clean() {
    replay_all("regressions");
}
