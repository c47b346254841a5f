//! The committed header is what cbindgen makes of the C API now, so an API
//! change cannot reach C programs unseen. `make header` (which sets
//! XDPCHAIN_WRITE_HEADER) rewrites it.
use std::path::Path;

#[test]
fn committed_header_matches_cbindgen() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the C API")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    let path = dir.join("../../include/xdpchain.h");
    if std::env::var_os("XDPCHAIN_WRITE_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/xdpchain.h differs from cbindgen's output: run `make header`"
    );
    // The version macros (cbindgen.toml) follow the crate's version.
    for (part, value) in ["MAJOR", "MINOR", "PATCH"]
        .iter()
        .zip(env!("CARGO_PKG_VERSION").split('.'))
    {
        let line = format!("#define XDPCHAIN_VERSION_{part} {value}\n");
        assert!(committed.contains(&line), "missing {line:?}");
    }
}
