//! The shared library's soname; what it exports is the `extern "C"`
//! functions alone (rustc's own version script for cdylibs hides the rest,
//! libbpf included), which tests/c/run.sh checks against debian/libxdpchain0.symbols.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libxdpchain.so.{major}");
}
