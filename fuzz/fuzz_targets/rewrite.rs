//! The ELF rewriter, on objects that the component reader did not vet.
#![no_main]
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    xdpchain_fuzz::drive::rewrite(data);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    xdpchain_fuzz::mutate_object(data, size, max, seed)
});
