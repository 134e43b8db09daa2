// The builtins. Thin: Nix values in and out, realisation, and the one
// profile step that needs libstore (createGeneration, which also registers
// the generation's GC root); every decision about the container, and every
// file its root could have planted something in, is the Rust core's
// (rust/core), reached through the cxx bridge.
#include "compat.hh"
#include "docs.hh"
#include "settings.hh"
#include "value-json.hh"

#include <chrono>
#include <thread>

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
    parseJSON(state, std::string(json), v);
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
    auto parsed = state.allocValue();
    parseJSON(state, json, *parsed);
    compat::extendAttrs(state, v, *parsed, 2, [&](auto & alloc) {
        alloc("nspawnArgs").mkApp(nspawnArgsPrimOp(state), parsed);
        if (!system.empty()) compat::mkString(state, alloc("system"), system, context);
    });
}

// Waits for the container's profile lock. Nix's own lockProfile would wait
// forever, deaf to ^C, and follows a link planted in the profile directory,
// which the container's root owns; the core's lock (profile_lock.rs) keeps
// Nix's protocol without either, and ends the wait with an error after the
// setting container-lock-timeout.
rust::Box<rs::Lock> lockProfile(EvalState & state, compat::PosArg pos, const rs::Plan & plan)
{
    auto start = std::chrono::steady_clock::now();
    for (bool said = false;; said = true) {
        auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        auto lock = bridge(state, pos, "containerProfile", [&] { return plan.try_lock(waited.count()); });
        if (lock->held()) return lock;
        if (!said) compat::info("waiting for the lock on profile '" + std::string(plan.profile()) + "'");
        compat::checkInterrupt();
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
}

NCP_PRIMOP_SIGNATURE(prim_containerProfile)
{
    const char * self = "containerProfile";
    requireImpure(state, pos, self, "writes container state", ", or use builtins.containerSpec, which is pure");
    requireWritableStore(state, pos, self);
    compat::forceAttrs(state, *args[0], pos, "while reading the argument of a container builtin");
    compat::Context context;
    auto json = valueToJson(state, *args[0], pos, context);
    auto plan = bridge(state, pos, self, [&] { return rs::plan(json, rustSettings(state)); });
    auto step = [&](auto && f) { return bridge(state, pos, self, f); };

    try {
        auto store = state.store;
        auto localStore = store.dynamic_pointer_cast<LocalFSStore>();
        if (!localStore)
            compat::throwEvalError(state, pos, "builtins.containerProfile needs a local store (profiles and GC roots live there)");

        auto system = std::string(plan->system());
        // Nothing to do (the common case when a host re-evaluates its
        // containers): answer from a few reads, without the lock or a
        // write. The generation link keeps the system alive; anything else
        // the arguments refer to (a derivation, a bind mount's source from
        // the store) is still realised, which for built paths is a lookup
        // in the store database.
        if (!system.empty()) {
            auto current = plan->unchanged(system);
            if (current >= 0) {
                if (!context.empty()) compat::realiseContext(state, context);
                rs::Outcome outcome{.generation = (uint64_t) current, .changed = false, .system_changed = false, .conf_changed = false};
                auto result = step([&] { return plan->describe(system, outcome); });
                returnJson(state, std::string(result), system, context, v);
                return;
            }
        }

        std::optional<StorePath> systemPath;
        if (!system.empty()) {
            // Builds what the arguments depend on, the system first of all.
            compat::realiseContext(state, context);
            systemPath = store->parseStorePath(system);
            if (!store->isValidPath(*systemPath))
                compat::throwEvalError(state, pos, "builtins.containerProfile: attribute 'system': '" + system
                    + "' is not in the Nix store; pass the derivation itself so that Nix builds it");
            store->addTempRoot(*systemPath);
            step([&] { plan->check_system(compat::realPath(*localStore, *systemPath)); });
        }

        step([&] { plan->prepare_nix_dirs(); });
        // Concurrent evaluations for the same container queue here, as
        // nix-env does on a profile.
        auto lock = lockProfile(state, pos, *plan);
        // A writer killed inside Nix's createGeneration leaves a temporary
        // link that Nix would take for a generation.
        step([&] { plan->remove_stale_temps(); });

        bool confChanged = step([&] { return plan->prepare_root_and_conf(); });
        auto before = std::string(step([&] { return plan->profile_system(); }));
        if (systemPath) {
            step([&] { plan->check_generation_room(); });
            // libstore adds the generation (or finds the newest one already
            // pointing there) and registers its GC root.
            auto generation = compat::createGeneration(ref<LocalFSStore>(localStore), std::string(plan->profile()), *systemPath);
            step([&] { plan->switch_to_link(generation); });
        } else
            step([&] { plan->switch_generation(); });
        auto after = std::string(step([&] { return plan->profile_system(); }));

        rs::Outcome outcome{
            .generation = step([&] { return plan->current_generation(); }),
            .changed = confChanged || before != after,
            .system_changed = before != after,
            .conf_changed = confChanged,
        };
        auto result = step([&] { return plan->describe(after, outcome); });
        returnJson(state, std::string(result), system.empty() ? after : system, context, v);
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
    parseJSON(state, std::string(gens), v);
}

compat::RegisterPrimOp registerProfile({
    .name = "containerProfile", .args = {"attrs"}, .doc = docs::containerProfile, .fun = prim_containerProfile});
compat::RegisterPrimOp registerSpec({
    .name = "containerSpec", .args = {"attrs"}, .doc = docs::containerSpec, .fun = prim_containerSpec});
compat::RegisterPrimOp registerGenerations({
    .name = "containerGenerations", .args = {"name"}, .doc = docs::containerGenerations, .fun = prim_containerGenerations});

}

}
