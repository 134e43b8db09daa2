fn main() {
    // Compiles the generated C++ half of the bridge into this static library;
    // the plugin includes the generated header from target/cxxbridge.
    cxx_build::bridge("src/lib.rs")
        .std("c++17")
        .compile("ncp-bridge-cxx");
    println!("cargo:rerun-if-changed=src/lib.rs");
}
