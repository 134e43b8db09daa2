// Shared by the loader (cpp/loader.cc, no Nix dependency) and the build: how
// the loader finds the plugin proper and the version of the Nix it runs in.
#pragma once

// The plugin proper, next to the loader. Point `plugin-files` at the loader
// file itself, not at the directory (Nix would load every file in it).
#define NCP_IMPL_FILE "nix-container-plugin-impl.so"

// `nix::nixVersion` (a const std::string in libnixstore), looked up by its
// mangled name so that the loader links against no Nix library and can refuse
// a mismatched Nix before anything else loads. GCC tags std::string globals
// with the C++11 ABI (B5cxx11); the untagged name is the fallback.
#define NCP_NIX_VERSION_SYMBOLS {"_ZN3nix10nixVersionB5cxx11E", "_ZN3nix10nixVersionE"}
