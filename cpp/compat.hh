// Everything that differs between the Nix versions the plugin builds against,
// in one place. The rest of cpp/ includes only this header from Nix and uses
// the names below. Tested: Nix 2.8.0 (Debian 12) and 2.26.3 (built from
// Debian 13's source). Expected to build, untested: 2.28+ header layout.
#pragma once

// --- Which Nix: feature detection on the headers pkg-config points at. -----
#if __has_include(<nix/expr/eval.hh>)
// Nix 2.28+: headers in per-library subdirectories, config headers inside.
#  define NCP_NIX_API 228
#  include <nix/expr/config.hh>
#  include <nix/expr/eval.hh>
#  include <nix/expr/eval-inline.hh>
#  include <nix/expr/eval-settings.hh>
#  include <nix/expr/json-to-value.hh>
#  include <nix/expr/primops.hh>
#  include <nix/store/globals.hh>
#  include <nix/store/local-fs-store.hh>
#  include <nix/store/pathlocks.hh>
#  include <nix/store/profiles.hh>
#  include <nix/store/store-api.hh>
#  include <nix/util/file-system.hh>
#  include <nix/util/config-global.hh>
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
#  include "pathlocks.hh"
#  include "profiles.hh"
#  include "store-api.hh"
#  include "file-system.hh"
#  include "config-global.hh"
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
#  include "pathlocks.hh"
#  include "primops.hh"
#  include "profiles.hh"
#  include "store-api.hh"
#  include "util.hh"
#endif

#include <algorithm>
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

// --- Errors -----------------------------------------------------------------

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

inline std::string nixStateDir() { return nix::settings.nixStateDir; }

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
inline std::string pathOf(const nix::Value & v) { return v.path().path.abs(); }
inline int64_t intOf(const nix::Value & v) { return v.integer().value; }
inline double floatOf(const nix::Value & v) { return v.fpoint(); }
inline bool boolOf(const nix::Value & v) { return v.boolean(); }
inline const nix::Bindings & attrsOf(nix::Value & v) { return *v.attrs(); }
inline std::string symbolName(nix::EvalState & state, const nix::Symbol & s) { return std::string(state.symbols[s]); }
#else
inline std::string_view stringOf(const nix::Value & v) { return v.string.s; }
inline std::string pathOf(const nix::Value & v) { return v.path; }
inline int64_t intOf(const nix::Value & v) { return v.integer; }
inline double floatOf(const nix::Value & v) { return v.fpoint; }
inline bool boolOf(const nix::Value & v) { return v.boolean; }
inline nix::Bindings & attrsOf(nix::Value & v) { return *v.attrs; }
inline std::string symbolName(nix::EvalState &, const nix::Symbol & s) { return (const std::string &) s; }
#endif

inline nix::Value & listElem(nix::Value & v, size_t i) { return *v.listElems()[i]; }

inline void copyContext(const nix::Value & v, Context & context) { nix::copyContext(v, context); }

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
    auto i = bindings.find(state.symbols.create(name));
    return i == bindings.end() ? nullptr : i->value;
}

// --- Making values ----------------------------------------------------------

inline void mkStringWithContext(nix::Value & v, const std::string & s, const Context & context)
{
    v.mkString(s, context);
}

inline void mkInt(nix::Value & v, int64_t n) { v.mkInt(n); }

// `attrs` with the attributes `values` added or replaced (one new set).
inline void setAttrs(nix::EvalState & state, nix::Value & attrs, const std::vector<std::pair<std::string_view, nix::Value *>> & values)
{
    std::vector<nix::Symbol> syms;
    for (auto & [name, _] : values) syms.push_back(state.symbols.create(name));
    auto & old = attrsOf(attrs);
    auto bindings = state.buildBindings(old.size() + values.size());
    for (auto & a : old)
        if (std::find(syms.begin(), syms.end(), a.name) == syms.end()) bindings.insert(a);
    for (size_t i = 0; i < values.size(); ++i) bindings.insert(syms[i], values[i].second);
    attrs.mkAttrs(bindings);
}

inline void mkList(nix::EvalState & state, nix::Value & v, const std::vector<nix::Value *> & items)
{
#if NCP_NIX_API >= 226
    auto list = state.buildList(items.size());
    for (size_t i = 0; i < items.size(); ++i) list[i] = items[i];
    v.mkList(list);
#else
    state.mkList(v, items.size());
    for (size_t i = 0; i < items.size(); ++i) v.listElems()[i] = items[i];
#endif
}

// --- Store and profiles -----------------------------------------------------

inline void realiseContext(nix::EvalState & state, const Context & context) { (void) state.realiseContext(context); }

inline nix::Path createGeneration(nix::ref<nix::LocalFSStore> store, const nix::Path & profile, const nix::StorePath & path)
{
#if NCP_NIX_API >= 226
    return nix::createGeneration(*store, profile, path);
#else
    return nix::createGeneration(store, profile, path);
#endif
}

// --- Registration -----------------------------------------------------------

struct PrimOpInfo
{
    const char * name;
    std::vector<std::string> args;
    const char * doc;
    void (*fun)(nix::EvalState &, PosArg, nix::Value **, nix::Value &);
};

// A primop that is not a builtin (no slot in the base environment), for
// lazy attributes: made once per process, outside the GC heap (it points
// at nothing the collector owns).
inline nix::Value * unregisteredPrimOp(nix::EvalState & state, PrimOpInfo info)
{
#if NCP_NIX_API >= 226
    (void) state;
    auto op = new nix::PrimOp{.name = info.name, .args = info.args, .arity = info.args.size(), .doc = info.doc, .fun = info.fun};
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
    explicit RegisterPrimOp(PrimOpInfo info)
        : reg(nix::PrimOp{.name = info.name, .args = info.args, .arity = info.args.size(), .doc = info.doc, .fun = info.fun})
    {
    }
#else
    explicit RegisterPrimOp(PrimOpInfo info)
        : reg(nix::RegisterPrimOp::Info{
              .name = info.name, .args = info.args, .arity = info.args.size(), .doc = info.doc, .fun = info.fun})
    {
    }
#endif
    nix::RegisterPrimOp reg;
};

}
