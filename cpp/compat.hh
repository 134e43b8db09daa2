// Everything that differs between the Nix versions the plugin builds against,
// in one place. The rest of cpp/ includes only this header from Nix and uses
// the names below; it has no #if of its own.
//
// Built and tested in full: Nix 2.8.0 (Debian 12), 2.35.2 and Lix 2.95.3
// (its tier is compat-lix.hh, included from here). Compiled on every change
// (scripts/compile-matrix.sh): 2.26.3 and 2.28 to 2.34.
// Which Nix it is comes from the headers pkg-config points at: a header that
// first appeared in a release marks that release (NCP_NIX_API below).
#pragma once

// The version rules that need no Nix header, from the minor version meson
// passes (the loader, which must link nothing of Nix, includes only these:
// it defines NCP_COMPAT_RULES_ONLY).
#ifndef NCP_NIX_MINOR
#  error "NCP_NIX_MINOR (the minor version of the Nix built against) must be defined"
#endif
// NCP_LIX: built against Lix (meson: 1 when it found lix-expr, not nix-expr).
#ifndef NCP_LIX
#  define NCP_LIX 0
#endif
// Supported: Nix 2.8 (Debian 12's) and 2.26 to 2.35, and Lix 2.95. Nix 2.9
// to 2.25 have the flat headers of 2.8 and would compile as if they were
// 2.8, untested.
#if NCP_LIX
#  if NCP_NIX_MINOR < 95
#    error "nix-container-plugin builds against Lix 2.95 (and Nix 2.8, 2.26 to 2.35); older Lix is not supported"
#  endif
#elif NCP_NIX_MINOR > 8 && NCP_NIX_MINOR < 26
#  error "nix-container-plugin builds against Nix 2.8 and 2.26 to 2.35 (and Lix 2.95); Nix 2.9 to 2.25 are not supported"
#endif
// Nix calls a plugin's nix_plugin_entry() right after loading it from 2.26
// on (read in 2.26's libmain/plugin.cc), Lix always; the loader of older
// ones loads the plugin proper at static initialisation.
#define NCP_NIX_CALLS_PLUGIN_ENTRY (NCP_LIX || NCP_NIX_MINOR >= 26)
// The implementation's name, for the loader's messages.
#define NCP_NIX_NAME (NCP_LIX ? "Lix" : "Nix")

#ifndef NCP_COMPAT_RULES_ONLY

#if NCP_LIX
#  include "compat-lix.hh"
#else

#if __has_include(<nix/expr/eval.hh>)
// Nix 2.28+: headers in per-library subdirectories, config headers inside.
#  if __has_include(<nix/util/fun.hh>)
#    define NCP_NIX_API 234 // PrimOp::impl, std::filesystem::path in libstore
#  elif __has_include(<nix/expr/static-string-data.hh>)
#    define NCP_NIX_API 233 // mkString(…, EvalMemory &), LocalFSStore::toRealPath
#  elif __has_include(<nix/expr/eval-profiler.hh>)
#    define NCP_NIX_API 230 // Value::listView() instead of listElems()
#  else
#    define NCP_NIX_API 228
#  endif
#  include <nix/expr/config.hh>
#  include <nix/expr/eval.hh>
#  include <nix/expr/eval-inline.hh>
#  include <nix/expr/eval-settings.hh>
#  include <nix/expr/json-to-value.hh>
#  include <nix/expr/primops.hh>
#  include <nix/store/globals.hh>
#  include <nix/store/local-fs-store.hh>
#  include <nix/store/profiles.hh>
#  include <nix/store/store-api.hh>
#  include <nix/util/config-global.hh>
#  include <nix/util/signals.hh>
#elif __has_include("config-expr.hh")
// Nix 2.2x with flat headers: the config headers are not named by the .pc
// files, and without them the plugin compiles but its layouts differ.
#  define NCP_NIX_API 226
#  include "config-util.hh"
#  include "config-store.hh"
#  include "config-expr.hh"
#  include "eval.hh"
#  include "eval-inline.hh"
#  include "eval-settings.hh"
#  include "json-to-value.hh"
#  include "primops.hh"
#  include "globals.hh"
#  include "local-fs-store.hh"
#  include "profiles.hh"
#  include "store-api.hh"
#  include "config-global.hh"
#  include "signals.hh"
#else
// Nix 2.8: configure's config.h first (HAVE_BOEHMGC changes the layout of
// the evaluator's types).
#  define NCP_NIX_API 208
#  include "config.h"
#  include "eval.hh"
#  include "eval-inline.hh"
#  include "globals.hh"
#  include "json-to-value.hh"
#  include "local-fs-store.hh"
#  include "primops.hh"
#  include "profiles.hh"
#  include "store-api.hh"
#  include "util.hh"
#endif

// The detection must agree with the version pkg-config reports (meson passes
// its minor number): the compile matrix then proves each tier's choice.
static_assert(NCP_NIX_API == (NCP_NIX_MINOR >= 34 ? 234 : NCP_NIX_MINOR >= 33 ? 233 : NCP_NIX_MINOR >= 30 ? 230
                              : NCP_NIX_MINOR >= 28 ? 228 : NCP_NIX_MINOR >= 26 ? 226 : 208),
    "the Nix headers found do not match the Nix version pkg-config reports");

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ncp::compat {

#if NCP_NIX_API >= 226
using PosArg = const nix::PosIdx;
using Context = nix::NixStringContext;
#else
using PosArg = const nix::Pos &;
using Context = nix::PathSet;
#endif

// A primop's signature.
#define NCP_PRIMOP_SIGNATURE(fn) \
    void fn(nix::EvalState & state, ncp::compat::PosArg pos, nix::Value ** args, nix::Value & v)

// Paths are std::string up to 2.33 and std::filesystem::path from 2.34.
inline std::string str(const std::string & s) { return s; }
inline std::string str(const std::filesystem::path & p) { return p.string(); }

// --- Errors and interrupts --------------------------------------------------

// An evaluation error at the call's position.
[[noreturn]] inline void throwEvalError(nix::EvalState & state, PosArg pos, const std::string & msg)
{
#if NCP_NIX_API >= 226
    state.error<nix::EvalError>("%s", msg).atPos(pos).debugThrow();
#else
    (void) state;
    throw nix::EvalError({.msg = nix::hintfmt(msg), .errPos = pos});
#endif
}

// A line of context on an error from libstore/libutil, at the call's position.
inline void addTrace(nix::EvalState & state, nix::Error & e, PosArg pos, const std::string & msg)
{
#if NCP_NIX_API >= 226
    e.addTrace(state.positions[pos], "%s", msg);
#else
    (void) state;
    e.addTrace(pos, nix::hintfmt(msg));
#endif
}

// Throws nix::Interrupted when the user pressed ^C (Nix's signal handling
// keeps a blocked system call from noticing).
inline void checkInterrupt() { nix::checkInterrupt(); }

// A line on stderr at Nix's default verbosity (as Nix's "waiting for lock").
inline void info(const std::string & msg)
{
    using namespace nix; // printInfo is a macro that names nix::logger unqualified
    printInfo("%s", msg);
}

// --- Evaluation mode --------------------------------------------------------

#if NCP_NIX_API >= 226
inline bool pureEval(nix::EvalState & state) { return state.settings.pureEval; }
inline bool restrictEval(nix::EvalState & state) { return state.settings.restrictEval; }
#else
inline bool pureEval(nix::EvalState &) { return nix::evalSettings.pureEval; }
inline bool restrictEval(nix::EvalState &) { return nix::evalSettings.restrictEval; }
#endif

// `nix-instantiate --eval` and `--read-only` evaluate without writing derivations.
inline bool readOnlyMode() { return nix::settings.readOnlyMode; }

inline std::string nixStateDir() { return str(nix::settings.nixStateDir); }

// --- Forcing and reading values ---------------------------------------------

inline void forceValue(nix::EvalState & state, nix::Value & v, PosArg pos) { state.forceValue(v, pos); }

inline void forceAttrs(nix::EvalState & state, nix::Value & v, PosArg pos, std::string_view what)
{
#if NCP_NIX_API >= 226
    state.forceAttrs(v, pos, what);
#else
    (void) what;
    state.forceAttrs(v, pos);
#endif
}

#if NCP_NIX_API >= 226
inline std::string_view stringOf(const nix::Value & v) { return v.string_view(); }
inline std::string pathOf(const nix::Value & v) { return std::string(v.path().path.abs()); }
inline int64_t intOf(const nix::Value & v) { return v.integer().value; }
inline double floatOf(const nix::Value & v) { return v.fpoint(); }
inline bool boolOf(const nix::Value & v) { return v.boolean(); }
inline const nix::Bindings & attrsOf(const nix::Value & v) { return *v.attrs(); }
inline std::string symbolName(nix::EvalState & state, const nix::Symbol & s) { return std::string(std::string_view(state.symbols[s])); }
#else
inline std::string_view stringOf(const nix::Value & v) { return v.string.s; }
inline std::string pathOf(const nix::Value & v) { return v.path; }
inline int64_t intOf(const nix::Value & v) { return v.integer; }
inline double floatOf(const nix::Value & v) { return v.fpoint; }
inline bool boolOf(const nix::Value & v) { return v.boolean; }
inline nix::Bindings & attrsOf(nix::Value & v) { return *v.attrs; }
inline std::string symbolName(nix::EvalState &, const nix::Symbol & s) { return (const std::string &) s; }
#endif

inline nix::Value & listElem(nix::Value & v, size_t i)
{
#if NCP_NIX_API >= 230
    return *v.listView()[i];
#else
    return *v.listElems()[i];
#endif
}

inline void copyContext(const nix::Value & v, Context & context) { nix::copyContext(v, context); }

inline nix::Value & attrValue(const nix::Attr & a) { return *a.value; }

// The string a value coerces to (a derivation: its outPath), with its context.
inline std::string coerceToString(nix::EvalState & state, PosArg pos, nix::Value & v, Context & context)
{
#if NCP_NIX_API >= 226
    return std::string(state.coerceToString(pos, v, context, "while reading a container's 'system'", false, false).toOwned());
#else
    return std::string(state.coerceToString(pos, v, context, false, false).toOwned());
#endif
}

inline nix::Value * findAttr(nix::EvalState & state, nix::Value & attrs, std::string_view name)
{
    auto & bindings = attrsOf(attrs);
#if NCP_NIX_API >= 226
    auto a = bindings.get(state.symbols.create(name));
    return a ? a->value : nullptr;
#else
    auto i = bindings.find(state.symbols.create(name));
    return i == bindings.end() ? nullptr : i->value;
#endif
}

// --- Making values ----------------------------------------------------------
// Nothing here keeps a new Value only in memory the garbage collector does not
// scan (a std::vector, say): values are made in place, in the attribute set
// or list being built.

inline void mkString(nix::EvalState & state, nix::Value & v, std::string_view s, const Context & context)
{
#if NCP_NIX_API >= 233
    v.mkString(s, context, state.mem);
#else
    (void) state;
    v.mkString(s, context);
#endif
}

inline nix::Value * allocValue(nix::EvalState & state) { return state.allocValue(); }

// `v` = `fun arg`, lazily (both stay referenced).
inline void mkApp(nix::EvalState &, nix::Value & v, nix::Value & fun, nix::Value & arg) { v.mkApp(&fun, &arg); }

inline void parseJSON(nix::EvalState & state, const std::string & json, nix::Value & v) { nix::parseJSON(state, json, v); }

// `out` = the attribute set `base` plus the attributes `make` allocates with
// alloc(name) (a name in `base` given again is replaced).
template<typename Make>
void extendAttrs(nix::EvalState & state, nix::Value & out, nix::Value & base, size_t extra, Make && make)
{
    auto & old = attrsOf(base);
    auto bindings = state.buildBindings(old.size() + extra);
    std::vector<nix::Symbol> added; // symbols only, no Values
    auto alloc = [&](std::string_view name) -> nix::Value & {
        auto sym = state.symbols.create(name);
        added.push_back(sym);
        return bindings.alloc(sym);
    };
    make(alloc);
    for (auto & a : old)
        if (std::find(added.begin(), added.end(), a.name) == added.end()) bindings.insert(a);
    out.mkAttrs(bindings);
}

// --- Store and profiles -----------------------------------------------------

inline nix::ref<nix::Store> store(nix::EvalState & state) { return state.store; }
inline std::string storeDir(nix::Store & store) { return store.storeDir; }
// The store as a local one (profiles and GC roots live there), if it is.
inline std::optional<nix::ref<nix::LocalFSStore>> localStore(nix::EvalState & state)
{
    auto p = state.store.dynamic_pointer_cast<nix::LocalFSStore>();
    if (!p) return std::nullopt;
    return nix::ref<nix::LocalFSStore>(p);
}

inline void realiseContext(nix::EvalState & state, const Context & context) { (void) state.realiseContext(context); }

inline bool isValidPath(nix::EvalState &, nix::Store & store, const nix::StorePath & path) { return store.isValidPath(path); }

inline void addTempRoot(nix::EvalState &, nix::Store & store, const nix::StorePath & path) { store.addTempRoot(path); }

// Where a store path is on disk (the store may be relocated, e.g. --store DIR).
inline std::string realPath(nix::LocalFSStore & store, const nix::StorePath & path)
{
#if NCP_NIX_API >= 233
    return str(store.toRealPath(path));
#else
    nix::Store & base = store;
    return base.toRealPath(base.printStorePath(path));
#endif
}

// libstore's createGeneration: the new (or newest, if it already points at
// `path`) generation link of `profile`, with its GC root registered.
inline std::string createGeneration(nix::EvalState &, nix::ref<nix::LocalFSStore> store, const std::string & profile, const nix::StorePath & path)
{
#if NCP_NIX_API >= 226
    return str(nix::createGeneration(*store, profile, path));
#else
    return nix::createGeneration(store, profile, path);
#endif
}

// --- Registration -----------------------------------------------------------

struct PrimOpInfo
{
    const char * name;
    std::vector<std::string> args;
    const char * doc; // never null: from 2.33 a null doc compiles and throws
    void (*fun)(nix::EvalState &, PosArg, nix::Value **, nix::Value &);
};

#if NCP_NIX_API >= 234
#  define NCP_PRIMOP_FUN_FIELD impl
#else
#  define NCP_PRIMOP_FUN_FIELD fun
#endif

#if NCP_NIX_API >= 226
inline nix::PrimOp makePrimOp(const PrimOpInfo & info)
{
    return nix::PrimOp{
        .name = info.name, .args = info.args, .arity = info.args.size(), .doc = info.doc, .NCP_PRIMOP_FUN_FIELD = info.fun};
}
#endif

// A primop that is not a builtin (no slot in the base environment), for
// lazy attributes: made once per process, outside the GC heap (it points
// at nothing the collector owns).
inline nix::Value * unregisteredPrimOp(nix::EvalState & state, const PrimOpInfo & info)
{
#if NCP_NIX_API >= 226
    (void) state;
    auto op = new nix::PrimOp(makePrimOp(info));
#else
    auto op = new nix::PrimOp{.fun = info.fun, .arity = info.args.size(), .name = state.symbols.create(info.name), .args = info.args, .doc = info.doc};
#endif
    auto v = new nix::Value;
    v->mkPrimOp(op);
    return v;
}

// Static registration, which every version collects when the plugin loads;
// newer Nix calls the loader's nix_plugin_entry() first (cpp/loader.cc).
struct RegisterPrimOp
{
#if NCP_NIX_API >= 226
    explicit RegisterPrimOp(const PrimOpInfo & info)
        : reg(makePrimOp(info))
    {
    }
#else
    explicit RegisterPrimOp(const PrimOpInfo & info)
        : reg(nix::RegisterPrimOp::Info{
              .name = info.name, .args = info.args, .arity = info.args.size(), .doc = info.doc, .fun = info.fun})
    {
    }
#endif
    nix::RegisterPrimOp reg;
};

inline void registerSettings(nix::Config & config) { static nix::GlobalConfig::Register reg(&config); }

}

#endif // NCP_LIX

#endif // NCP_COMPAT_RULES_ONLY
