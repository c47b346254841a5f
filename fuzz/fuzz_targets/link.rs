//! The whole link path without a kernel: an object read, rewritten twice
//! (two components of one chain), linked by libbpf, its root generated.
#![no_main]
use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use xdpchain::{Chain, Component};

fuzz_target!(|data: &[u8]| {
    let Ok(c) = Component::from_bytes(data, "fuzzed.o", None) else {
        return;
    };
    let mut chain = Chain::new();
    if chain.add(c.clone()).is_ok() && chain.add(c).is_ok() {
        let _ = chain.link();
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    xdpchain_fuzz::mutate_object(data, size, max, seed)
});
