//! libFuzzer entry point of the `hub_mls` target; the body is [`cove_fuzz`]'s. Built by
//! `cargo fuzz` (which passes `--cfg fuzzing`); a normal build instead replays the files
//! and directories given as arguments, e.g. a crash file.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| cove_fuzz::target("hub_mls").expect("known target")(data)
);

#[cfg(not(fuzzing))]
fn main() {
    cove_fuzz::replay::main("hub_mls");
}
