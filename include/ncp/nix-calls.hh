// What the Rust core asks of Nix while it runs containerProfile's steps
// (rust/core/src/container_profile.rs): the bridge's one C++ type, defined by
// the plugin (cpp/plugin.cc). It needs no Nix header, so that cargo can
// compile the bridge's C++ half without Nix.
#pragma once

#if __has_include("rust/cxx.h")
#  include "rust/cxx.h" // when cargo builds the bridge
#else
#  include "cxx.h" // when meson builds the plugin (a copy in its build dir)
#endif

namespace ncp {

class NixCalls
{
public:
    virtual ~NixCalls() = default;
    // The real path of a valid store path, held by a temporary GC root.
    virtual rust::String system_real_path(rust::Str system) const = 0;
    // libstore's createGeneration: the generation link's path.
    virtual rust::String create_generation(rust::Str profile, rust::Str system) const = 0;
    // Whether the user interrupted (^C); never throws.
    virtual bool interrupted() const = 0;
    // Tells the user; never throws.
    virtual void progress(rust::Str message) const = 0;
};

}
