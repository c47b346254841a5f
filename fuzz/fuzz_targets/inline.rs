//! The instruction transformer of inlined chains.
#![no_main]
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    xdpchain_fuzz::drive::generate(data);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    xdpchain_fuzz::mutate_insns(data, size, max, seed)
});
