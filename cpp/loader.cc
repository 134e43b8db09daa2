// The file users load with `--plugin-files`. It links against no Nix library,
// so it loads into any Nix; it checks that Nix is the version the plugin was
// built for and only then loads the plugin proper. Into another Nix it prints
// one line and registers nothing, instead of failing with undefined symbols
// or, worse, running with mismatched class layouts.
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <cstdio>
#include <string>

#include "ncp/loader.hh"

// The version rules only (NCP_NIX_CALLS_PLUGIN_ENTRY): no Nix header here.
#define NCP_COMPAT_RULES_ONLY
#include "compat.hh"

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

// The running Nix's version string, if the symbol is what we take it for: a
// data object of the size of our std::string (not, say, a function or the
// std::string of another C++ library, which would be read as garbage).
const std::string * runningNixVersion()
{
    void * sym = dlsym(RTLD_DEFAULT, NCP_NIX_VERSION_SYMBOL);
    if (!sym) return nullptr;
    Dl_info info{};
    void * entry = nullptr;
    if (!dladdr1(sym, &info, &entry, RTLD_DL_SYMENT) || !entry) return nullptr;
    auto elf = static_cast<const ElfW(Sym) *>(entry);
    // ELF32_ST_TYPE is the same macro for 64-bit symbols (the low 4 bits).
    if (ELF32_ST_TYPE(elf->st_info) != STT_OBJECT || elf->st_size != sizeof(std::string)) return nullptr;
    return static_cast<const std::string *>(sym);
}

// Runs when Nix dlopen()s this file, in every Nix version.
struct Loader
{
    Loader()
    {
        const std::string * running = runningNixVersion();
        if (!running) {
            fprintf(stderr, "warning: nix-container-plugin (built for %s %s) is not loaded: cannot find this Nix's version\n",
                NCP_NIX_NAME, NCP_NIX_VERSION);
            return;
        }
        const char * runningName = dlsym(RTLD_DEFAULT, NCP_LIX_ONLY_SYMBOL) ? "Lix" : "Nix";
        if (*running != NCP_NIX_VERSION || std::string(runningName) != NCP_NIX_NAME) {
            fprintf(stderr, "warning: nix-container-plugin was built for %s %s, but this is %s %s; its builtins are not available (rebuild it against this %s)\n",
                NCP_NIX_NAME, NCP_NIX_VERSION, runningName, running->c_str(), runningName);
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
