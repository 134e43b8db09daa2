#!/bin/sh
# Called by meson: builds the bridge's static library with cargo and copies it
# and the generated bridge header into meson's build directory.
#   build-staticlib.sh SOURCE_ROOT CARGO_TARGET_DIR OUT_LIB OUT_HEADER OUT_CXX_HEADER
# NCP_CARGO_TARGET_DIR, if set, replaces CARGO_TARGET_DIR: builds against
# several Nix versions share one (the bridge does not depend on Nix).
set -eu
src=$1 target=${NCP_CARGO_TARGET_DIR:-$2} out_lib=$3 out_hdr=$4 out_cxx=$5
# Exported as well: cxx-build writes the generated headers below
# $CARGO_TARGET_DIR when that is set, whatever --target-dir says.
export CARGO_TARGET_DIR=$target
cargo build --quiet --release --locked --manifest-path "$src/Cargo.toml" -p ncp-bridge --target-dir "$target"
cp "$target/release/libncp_bridge.a" "$out_lib"
cp "$target/cxxbridge/ncp-bridge/src/lib.rs.h" "$out_hdr"
cp "$target/cxxbridge/rust/cxx.h" "$out_cxx"
