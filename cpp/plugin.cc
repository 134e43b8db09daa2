// The builtins. Thin: Nix values in and out, realisation, and what only
// libstore can do (a store path's validity, createGeneration, which also
// registers the generation's GC root), asked for by the core through
// NixCalls. containerProfile's steps, every decision about the container,
// and every file its root could have planted something in, are the Rust
// core's (rust/core), reached through the cxx bridge.
#include "compat.hh"
#include "docs.hh"
#include "settings.hh"
#include "value-json.hh"

#include <exception>
#include <stdexcept>

using namespace nix;

namespace ncp {

namespace {

// Runs a bridge call; its error (a rust::Error) becomes an evaluation error
// at the call's position.
template<typename F>
auto bridge(EvalState & state, compat::PosArg pos, const char * builtin, F && f) -> decltype(f())
{
    try {
        return f();
    } catch (const rust::Error & e) {
        compat::throwEvalError(state, pos, std::string("builtins.") + builtin + ": " + e.what());
    }
}

// `what` says why the builtin is impure; `alternative` is a pure way, if any.
void requireImpure(EvalState & state, compat::PosArg pos, const char * builtin, const char * what, const char * alternative)
{
    if (compat::restrictEval(state))
        compat::throwEvalError(state, pos, std::string("builtins.") + builtin + " " + what
            + " and is not available in restricted evaluation mode (restrict-eval = true); run it without restrict-eval");
    if (compat::pureEval(state))
        compat::throwEvalError(state, pos, std::string("builtins.") + builtin + " " + what
            + " and is not available in pure evaluation mode; pass --impure (or --option pure-eval false)" + alternative);
}

void requireWritableStore(EvalState & state, compat::PosArg pos, const char * builtin)
{
    if (compat::readOnlyMode())
        compat::throwEvalError(state, pos, std::string("builtins.") + builtin
            + " builds the system and records a profile generation, which read-only evaluation "
              "(nix-instantiate --eval, --read-only) cannot do; use `nix eval --impure`, nix-build or "
              "nix-instantiate without --eval");
}

// `nspawnArgs` of a result, computed when it is used: the argv is the
// bulk of a result (about 35 strings), and evaluations that prepare many
// containers rarely look at it. Its argument is the result itself.
NCP_PRIMOP_SIGNATURE(prim_nspawnArgs)
{
    compat::forceAttrs(state, *args[0], pos, "while computing nspawnArgs");
    auto str = [&](const char * name) {
        auto a = compat::findAttr(state, *args[0], name);
        if (!a) compat::throwEvalError(state, pos, std::string("nspawnArgs: the container description has no '") + name + "'");
        compat::forceValue(state, *a, pos);
        return std::string(compat::stringOf(*a));
    };
    auto json = bridge(state, pos, "containerProfile", [&] { return rs::nspawn_args(str("name"), str("conf"), rustSettings(state)); });
    compat::parseJSON(state, std::string(json), v);
}

Value * nspawnArgsPrimOp(EvalState & state)
{
    static Value * op = compat::unregisteredPrimOp(state, {.name = "nspawnArgs", .args = {"container"}, .doc = docs::nspawnArgs, .fun = prim_nspawnArgs});
    return op;
}

// The result: the core's JSON as a Nix value, plus `system` carrying the
// argument's string context (so that it still depends on the derivation it
// came from) and a lazy `nspawnArgs`.
void returnJson(EvalState & state, const std::string & json, const std::string & system, const compat::Context & context, Value & v)
{
    // The set as parsed is also the argument of nspawnArgs (it needs only
    // name and conf).
    auto parsed = compat::allocValue(state);
    compat::parseJSON(state, json, *parsed);
    compat::extendAttrs(state, v, *parsed, 2, [&](auto & alloc) {
        compat::mkApp(state, alloc("nspawnArgs"), *nspawnArgsPrimOp(state), *parsed);
        if (!system.empty()) compat::mkString(state, alloc("system"), system, context);
    });
}

// What the core's containerProfile steps ask of Nix (include/ncp/nix-calls.hh).
// No exception crosses the bridge: a failure is kept, the core gets an
// error and returns, and the builtin rethrows Nix's own error (an interrupt
// stays an interrupt, an evaluation error keeps its position).
class PluginNixCalls : public NixCalls
{
    EvalState & state;
    compat::PosArg pos;
    ref<LocalFSStore> store;

    template<typename F>
    auto kept(F && f) const -> decltype(f())
    {
        try {
            return f();
        } catch (...) {
            failure = std::current_exception();
            throw std::runtime_error("a call into Nix failed");
        }
    }

public:
    mutable std::exception_ptr failure;

    PluginNixCalls(EvalState & state, compat::PosArg pos, ref<LocalFSStore> store)
        : state(state), pos(pos), store(store)
    {
    }

    rust::String system_real_path(rust::Str system) const override
    {
        return kept([&] {
            auto path = store->parseStorePath(std::string(system));
            if (!compat::isValidPath(state, *store, path))
                compat::throwEvalError(state, pos, "builtins.containerProfile: attribute 'system': '" + std::string(system)
                    + "' is not in the Nix store; pass the derivation itself so that Nix builds it");
            compat::addTempRoot(state, *store, path);
            return rust::String(compat::realPath(*store, path));
        });
    }

    // libstore adds the generation (or finds the newest one already
    // pointing there) and registers its GC root.
    rust::String create_generation(rust::Str profile, rust::Str system) const override
    {
        return kept([&] {
            return rust::String(compat::createGeneration(state, store, std::string(profile), store->parseStorePath(std::string(system))));
        });
    }

    bool interrupted() const override
    {
        try {
            compat::checkInterrupt();
            return false;
        } catch (...) {
            failure = std::current_exception();
            return true;
        }
    }

    void progress(rust::Str message) const override
    {
        try {
            compat::info(std::string(message));
        } catch (...) {
        }
    }
};

NCP_PRIMOP_SIGNATURE(prim_containerProfile)
{
    const char * self = "containerProfile";
    requireImpure(state, pos, self, "writes container state", ", or use builtins.containerSpec, which is pure");
    requireWritableStore(state, pos, self);
    compat::forceAttrs(state, *args[0], pos, "while reading the argument of a container builtin");
    compat::Context context;
    auto json = valueToJson(state, *args[0], pos, context);
    auto plan = bridge(state, pos, self, [&] { return rs::plan(json, rustSettings(state)); });

    try {
        auto localStore = compat::localStore(state);
        if (!localStore)
            compat::throwEvalError(state, pos, "builtins.containerProfile needs a local store (profiles and GC roots live there)");
        // Builds what the arguments depend on, the system first of all (for
        // a system already built, a lookup in the store database).
        if (!context.empty()) compat::realiseContext(state, context);
        PluginNixCalls nix(state, pos, *localStore);
        auto done = bridge(state, pos, self, [&] {
            try {
                return plan->container_profile(nix);
            } catch (const rust::Error &) {
                if (nix.failure) std::rethrow_exception(nix.failure);
                throw;
            }
        });
        returnJson(state, std::string(done.json), std::string(done.system), context, v);
    } catch (Error & e) {
        compat::addTrace(state, e, pos, "while preparing a container with builtins.containerProfile");
        throw;
    }
}

NCP_PRIMOP_SIGNATURE(prim_containerSpec)
{
    compat::forceAttrs(state, *args[0], pos, "while reading the argument of a container builtin");
    compat::Context context;
    auto json = valueToJson(state, *args[0], pos, context);
    auto plan = bridge(state, pos, "containerSpec", [&] { return rs::plan(json, rustSettings(state)); });
    auto result = bridge(state, pos, "containerSpec", [&] { return plan->describe_spec(); });
    returnJson(state, std::string(result), std::string(plan->system()), context, v);
}

NCP_PRIMOP_SIGNATURE(prim_containerGenerations)
{
    const char * self = "containerGenerations";
    requireImpure(state, pos, self, "reads a container's profile", "");
    compat::Context context;
    auto json = valueToJson(state, *args[0], pos, context);
    auto gens = bridge(state, pos, self, [&] { return rs::generations_json(json, rustSettings(state)); });
    compat::parseJSON(state, std::string(gens), v);
}

compat::RegisterPrimOp registerProfile({
    .name = "containerProfile", .args = {"attrs"}, .doc = docs::containerProfile, .fun = prim_containerProfile});
compat::RegisterPrimOp registerSpec({
    .name = "containerSpec", .args = {"attrs"}, .doc = docs::containerSpec, .fun = prim_containerSpec});
compat::RegisterPrimOp registerGenerations({
    .name = "containerGenerations", .args = {"name"}, .doc = docs::containerGenerations, .fun = prim_containerGenerations});

}

}
