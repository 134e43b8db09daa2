fn main() {
    // Compiles the generated C++ half of the bridge into this static library;
    // the plugin includes the generated header from target/cxxbridge. The
    // one C++ type Rust calls (NixCalls) is declared in include/ncp.
    cxx_build::bridge("src/lib.rs")
        .include(concat!(env!("CARGO_MANIFEST_DIR"), "/../../include"))
        .std("c++17")
        .compile("ncp-bridge-cxx");
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=../../include/ncp/nix-calls.hh");
}
