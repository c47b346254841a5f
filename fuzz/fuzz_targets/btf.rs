//! The BTF editor, on a `.BTF` section.
#![no_main]
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    xdpchain_fuzz::drive::btf(data);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    xdpchain_fuzz::mutate_btf(data, size, max, seed, 0)
});
