// The Lix side of compat.hh (included by it, never alone): Lix, the fork of
// Nix 2.18 that NixOS offers as `nix.package = pkgs.lix`. Its own header
// because nearly every call differs from Nix's, so #ifs interleaved with
// compat.hh's would make both unreadable: headers under lix/lib*/, primops
// take no position and register through PluginPrimOps, values are small
// and built in place with NewValueAs, the evaluator's parts are in
// `state.ctx` (store, symbols, errors, memory), and the store's calls are
// asynchronous (kj promises, waited for with `state.aio.blockOn`).
// The names below are compat.hh's, with the same meaning; read it first.
// Built and tested: Lix 2.95.3 (scripts/lix-sid.sh).
#pragma once

#include <lix/config.h>
#include <lix/libexpr/eval.hh>
#include <lix/libexpr/eval-inline.hh>
#include <lix/libexpr/eval-settings.hh>
#include <lix/libexpr/json-to-value.hh>
#include <lix/libexpr/primops.hh>
#include <lix/libstore/globals.hh>
#include <lix/libstore/local-fs-store.hh>
#include <lix/libstore/profiles.hh>
#include <lix/libstore/store-api.hh>
#include <lix/libutil/config.hh>
#include <lix/libutil/signals.hh>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ncp::compat {

// Lix's primops have no position argument: ours keep theirs (always noPos
// here), and Lix's evaluator reports where the builtin was called.
using PosArg = const nix::PosIdx;
using Context = nix::NixStringContext;

#define NCP_PRIMOP_SIGNATURE(fn) \
    void fn(nix::EvalState & state, ncp::compat::PosArg pos, nix::Value ** args, nix::Value & v)

inline std::string str(const std::string & s) { return s; }

// --- Errors and interrupts --------------------------------------------------

[[noreturn]] inline void throwEvalError(nix::EvalState & state, PosArg pos, const std::string & msg)
{
    state.ctx.errors.make<nix::EvalError>("%s", msg).atPos(pos).debugThrow();
}

inline void addTrace(nix::EvalState &, nix::Error & e, PosArg, const std::string & msg)
{
    e.addTrace(nullptr, "%s", msg);
}

inline void checkInterrupt() { nix::checkInterrupt(); }

inline void info(const std::string & msg)
{
    using namespace nix;
    printInfo("%s", msg);
}

// --- Evaluation mode --------------------------------------------------------

inline bool pureEval(nix::EvalState &) { return nix::evalSettings.pureEval; }
inline bool restrictEval(nix::EvalState &) { return nix::evalSettings.restrictEval; }
inline bool readOnlyMode() { return nix::settings.readOnlyMode; }
inline std::string nixStateDir() { return nix::settings.nixStateDir; }

// --- Forcing and reading values ---------------------------------------------

inline void forceValue(nix::EvalState & state, nix::Value & v, PosArg pos) { state.forceValue(v, pos); }

inline void forceAttrs(nix::EvalState & state, nix::Value & v, PosArg pos, std::string_view what)
{
    (void) state.forceAttrs(v, pos, what);
}

inline std::string_view stringOf(const nix::Value & v) { return v.str(); }
inline std::string pathOf(const nix::Value & v) { return v.path().to_string(); }
inline int64_t intOf(const nix::Value & v) { return v.integer().value; }
inline double floatOf(const nix::Value & v) { return v.fpoint(); }
inline bool boolOf(const nix::Value & v) { return v.boolean(); }
inline nix::Bindings & attrsOf(const nix::Value & v) { return *v.attrs(); }
inline nix::Value & attrValue(const nix::Attr & a) { return a.value; }
inline std::string symbolName(nix::EvalState & state, const nix::Symbol & s)
{
    return std::string(std::string_view(state.ctx.symbols[s]));
}
inline nix::Value & listElem(nix::Value & v, size_t i) { return v.listElems()[i]; }

inline void copyContext(const nix::Value & v, Context & context) { nix::copyContext(v, context); }

inline std::string coerceToString(nix::EvalState & state, PosArg pos, nix::Value & v, Context & context)
{
    return std::string(state
            .coerceToString(pos, v, context, "while reading a container's 'system'", nix::StringCoercionMode::Strict, false)
            .toOwned());
}

inline nix::Value * findAttr(nix::EvalState & state, nix::Value & attrs, std::string_view name)
{
    auto a = attrsOf(attrs).get(state.ctx.symbols.create(name));
    return a ? &a->value : nullptr;
}

// --- Making values ----------------------------------------------------------

inline nix::Value * allocValue(nix::EvalState & state) { return state.ctx.mem.allocType<nix::Value>(); }

inline void mkString(nix::EvalState &, nix::Value & v, std::string_view s, const Context & context)
{
    v = {nix::NewValueAs::string, s, context};
}

inline void mkApp(nix::EvalState & state, nix::Value & v, nix::Value & fun, nix::Value & arg)
{
    v = {nix::NewValueAs::app, state.ctx.mem, fun, arg};
}

inline void parseJSON(nix::EvalState & state, const std::string & json, nix::Value & v) { nix::parseJSON(state, json, v); }

template<typename Make>
void extendAttrs(nix::EvalState & state, nix::Value & out, nix::Value & base, size_t extra, Make && make)
{
    auto & old = attrsOf(base);
    auto bindings = state.ctx.buildBindings(old.size() + extra);
    std::vector<nix::Symbol> added;
    auto alloc = [&](std::string_view name) -> nix::Value & {
        auto sym = state.ctx.symbols.create(name);
        added.push_back(sym);
        return bindings.alloc(sym);
    };
    make(alloc);
    for (auto & a : old)
        if (std::find(added.begin(), added.end(), a.name) == added.end()) bindings.insert(a);
    out = {nix::NewValueAs::attrs, bindings};
}

// --- Store and profiles -----------------------------------------------------

inline nix::ref<nix::Store> store(nix::EvalState & state) { return state.ctx.store; }
inline std::string storeDir(nix::Store & store) { return store.config().storeDir; }
inline std::optional<nix::ref<nix::LocalFSStore>> localStore(nix::EvalState & state)
{
    return state.ctx.store.try_cast<nix::LocalFSStore>();
}

inline void realiseContext(nix::EvalState & state, const Context & context) { (void) state.realiseContext(context); }

inline bool isValidPath(nix::EvalState & state, nix::Store & store, const nix::StorePath & path)
{
    return state.aio.blockOn(store.isValidPath(path));
}

inline void addTempRoot(nix::EvalState & state, nix::Store & store, const nix::StorePath & path)
{
    state.aio.blockOn(store.addTempRoot(path));
}

inline std::string realPath(nix::LocalFSStore & store, const nix::StorePath & path)
{
    nix::Store & base = store;
    return base.toRealPath(path);
}

inline std::string createGeneration(
    nix::EvalState & state, nix::ref<nix::LocalFSStore> store, const std::string & profile, const nix::StorePath & path)
{
    return state.aio.blockOn(nix::createGeneration(*store, profile, path));
}

// --- Registration -----------------------------------------------------------

struct PrimOpInfo
{
    const char * name;
    std::vector<std::string> args;
    const char * doc;
    void (*fun)(nix::EvalState &, PosArg, nix::Value **, nix::Value &);
};

inline nix::PrimOpDetails makePrimOp(const PrimOpInfo & info)
{
    auto fun = info.fun;
    return nix::PrimOpDetails{
        .name = info.name,
        .args = info.args,
        .arity = info.args.size(),
        .doc = info.doc,
        .fun = [fun](nix::EvalState & state, nix::Value ** args, nix::Value & v) { fun(state, nix::noPos, args, v); },
    };
}

inline nix::Value * unregisteredPrimOp(nix::EvalState &, const PrimOpInfo & info)
{
    return new nix::Value{nix::NewValueAs::primop, *new nix::Value::PrimOp(makePrimOp(info))};
}

// Lix collects plugin primops in PluginPrimOps (when the plugin loads: the
// loader's nix_plugin_entry dlopens the plugin proper, which runs this).
struct RegisterPrimOp
{
    explicit RegisterPrimOp(const PrimOpInfo & info) { nix::PluginPrimOps::add(makePrimOp(info)); }
};

inline void registerSettings(nix::Config & config) { nix::GlobalConfig::registerGlobalConfig(config); }

}
