// Everything that differs between the Nix versions the plugin builds against,
// in one place. The rest of cpp/ includes only this header from Nix and uses
// the names below. Tested: Nix 2.8.0 (Debian 12's nix-bin).
#pragma once

// Nix 2.8's headers want configure's config.h first (HAVE_BOEHMGC changes
// the layout of the evaluator's types).
#include "config.h"

#include "eval.hh"
#include "eval-inline.hh"
#include "globals.hh"
#include "json-to-value.hh"
#include "local-fs-store.hh"
#include "pathlocks.hh"
#include "primops.hh"
#include "profiles.hh"
#include "store-api.hh"
#include "util.hh"

namespace ncp::compat {

// A primop's position argument.
using PosArg = const nix::Pos &;
#define NCP_PRIMOP_SIGNATURE(fn) \
    void fn(nix::EvalState & state, ncp::compat::PosArg pos, nix::Value ** args, nix::Value & v)

// An evaluation error at the call's position.
[[noreturn]] inline void throwEvalError(nix::EvalState &, PosArg pos, const std::string & msg)
{
    throw nix::EvalError({.msg = nix::hintfmt(msg), .errPos = pos});
}

// A line of context on an error from libstore/libutil, at the call's position.
inline void addTrace(nix::Error & e, PosArg pos, const std::string & msg)
{
    e.addTrace(pos, nix::hintfmt(msg));
}

inline bool pureEval(nix::EvalState &) { return nix::evalSettings.pureEval; }
inline bool restrictEval(nix::EvalState &) { return nix::evalSettings.restrictEval; }

// `nix-instantiate --eval` and `--read-only` evaluate without writing derivations.
inline bool readOnlyMode() { return nix::settings.readOnlyMode; }

inline std::string nixStateDir() { return nix::settings.nixStateDir; }

inline void forceValue(nix::EvalState & state, nix::Value & v, PosArg pos) { state.forceValue(v, pos); }
inline void forceAttrs(nix::EvalState & state, nix::Value & v, PosArg pos) { state.forceAttrs(v, pos); }

// Reading a forced value.
inline std::string_view stringOf(const nix::Value & v) { return v.string.s; }
inline std::string pathOf(const nix::Value & v) { return v.path; }
inline nix::NixInt intOf(const nix::Value & v) { return v.integer; }
inline nix::NixFloat floatOf(const nix::Value & v) { return v.fpoint; }
inline bool boolOf(const nix::Value & v) { return v.boolean; }
inline std::string symbolName(const nix::Symbol & s) { return (const std::string &) s; }

// The string of a value that coerces to one (a derivation: its outPath),
// with its context collected.
inline std::string coerceToString(nix::EvalState & state, PosArg pos, nix::Value & v, nix::PathSet & context)
{
    return std::string(state.coerceToString(pos, v, context, false, false).toOwned());
}

inline nix::Value * findAttr(nix::EvalState & state, nix::Value & attrs, std::string_view name)
{
    auto i = attrs.attrs->find(state.symbols.create(name));
    return i == attrs.attrs->end() ? nullptr : i->value;
}

inline void setAttr(nix::EvalState & state, nix::Value & attrs, std::string_view name, nix::Value * value)
{
    auto i = attrs.attrs->find(state.symbols.create(name));
    if (i != attrs.attrs->end()) i->value = value;
}

inline void mkStringWithContext(nix::Value & v, const std::string & s, const nix::PathSet & context)
{
    v.mkString(s, context);
}

inline void realiseContext(nix::EvalState & state, const nix::PathSet & context)
{
    (void) state.realiseContext(context);
}

// Registration: Nix 2.8 collects RegisterPrimOp objects at load time.
struct PrimOpInfo
{
    const char * name;
    std::vector<std::string> args;
    const char * doc;
    nix::PrimOpFun fun;
};

struct RegisterPrimOp
{
    explicit RegisterPrimOp(PrimOpInfo info)
        : reg(nix::RegisterPrimOp::Info{
              .name = info.name, .args = info.args, .arity = info.args.size(), .doc = info.doc, .fun = info.fun})
    {
    }
    nix::RegisterPrimOp reg;
};

}
