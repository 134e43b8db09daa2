// The file users load with `--plugin-files`. It links against no Nix library,
// so it loads into any Nix; it checks that Nix is the version the plugin was
// built for and only then loads the plugin proper. Into another Nix it prints
// one line and registers nothing, instead of failing with undefined symbols
// or, worse, running with mismatched class layouts.
#include <dlfcn.h>
#include <cstdio>
#include <string>

#include "ncp/loader.hh"

#ifndef NCP_NIX_VERSION
#error "NCP_NIX_VERSION (the Nix version the plugin is built for) must be defined"
#endif

namespace {

std::string ownDirectory()
{
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void *>(&ownDirectory), &info) || !info.dli_fname) return ".";
    std::string self = info.dli_fname;
    auto slash = self.rfind('/');
    return slash == std::string::npos ? "." : self.substr(0, slash);
}

void loadImpl()
{
    auto impl = ownDirectory() + "/" NCP_IMPL_FILE;
    // RTLD_NOW: a missing symbol is reported here, not in the middle of an evaluation.
    if (!dlopen(impl.c_str(), RTLD_NOW | RTLD_LOCAL))
        fprintf(stderr, "warning: nix-container-plugin is not loaded: %s\n", dlerror());
}

bool versionMatches = false;

// Runs when Nix dlopen()s this file, in every Nix version.
struct Loader
{
    Loader()
    {
        const std::string * running = nullptr;
        for (auto symbol : NCP_NIX_VERSION_SYMBOLS)
            if (!running) running = static_cast<const std::string *>(dlsym(RTLD_DEFAULT, symbol));
        if (!running) {
            fprintf(stderr, "warning: nix-container-plugin (built for Nix %s) is not loaded: cannot find this Nix's version\n",
                NCP_NIX_VERSION);
            return;
        }
        if (*running != NCP_NIX_VERSION) {
            fprintf(stderr, "warning: nix-container-plugin was built for Nix %s, but this is Nix %s; its builtins are not available (rebuild it against this Nix)\n",
                NCP_NIX_VERSION, running->c_str());
            return;
        }
        versionMatches = true;
#if !NCP_NIX_CALLS_PLUGIN_ENTRY
        loadImpl();
#endif
    }
};

Loader loader;

}

#if NCP_NIX_CALLS_PLUGIN_ENTRY
// Nix versions that have it call this right after loading the file: the
// plugin proper (whose primops register as it loads) is loaded from here,
// once the version check above has passed.
extern "C" __attribute__((visibility("default"))) void nix_plugin_entry()
{
    if (versionMatches) loadImpl();
}
#endif
