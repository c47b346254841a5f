//! The component reader: any bytes handed to Component::from_bytes (the C
//! API's `buf`, Python's `bytes`).
#![no_main]
use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    let _ = xdpchain::Component::from_bytes(data, "fuzzed.o", None);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    xdpchain_fuzz::mutate_object(data, size, max, seed)
});
