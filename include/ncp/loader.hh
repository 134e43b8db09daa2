// Shared by the loader (cpp/loader.cc, no Nix dependency) and the build: how
// the loader finds the plugin proper and the version of the Nix it runs in.
#pragma once

#include <string>

// The plugin proper, next to the loader. Point `plugin-files` at the loader
// file itself, not at the directory (Nix would load every file in it).
#define NCP_IMPL_FILE "nix-container-plugin-impl.so"

// `nix::nixVersion`, a std::string in libnixstore, looked up by its mangled
// name so that the loader links against no Nix library and can refuse a
// mismatched Nix before anything else loads. The name is that of the
// std::string the plugin itself is built with (which must be Nix's): with
// libstdc++'s C++11 ABI, GCC tags it B5cxx11. The loader also checks that
// the symbol is an object of exactly that type's size before reading it.
#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
#  define NCP_NIX_VERSION_SYMBOL "_ZN3nix10nixVersionB5cxx11E"
#else
#  define NCP_NIX_VERSION_SYMBOL "_ZN3nix10nixVersionE"
#endif

// A symbol only Lix has (nix::PluginPrimOps::add(nix::PrimOpDetails &&), its
// plugins' way to add a builtin): tells Lix from Nix, whose version numbers
// could otherwise meet.
#define NCP_LIX_ONLY_SYMBOL "_ZN3nix13PluginPrimOps3addEONS_13PrimOpDetailsE"
