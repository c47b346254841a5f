//! The BTF.ext editor, on a `.BTF` section's length, the section, and a
//! `.BTF.ext` section.
#![no_main]
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    xdpchain_fuzz::drive::btf_ext(data);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    xdpchain_fuzz::mutate_btf_ext(data, size, max, seed)
});
