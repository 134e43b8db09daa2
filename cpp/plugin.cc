// The builtins. Thin: Nix values in and out, realisation, profiles and GC
// roots through libstore; every decision about the container is the Rust
// core's (rust/core), reached through the cxx bridge.
#include "compat.hh"
#include "docs.hh"
#include "settings.hh"
#include "value-json.hh"

#include <climits>
#include <unistd.h>

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
    static Value * op = compat::unregisteredPrimOp(state, {.name = "nspawnArgs", .args = {"container"}, .doc = nullptr, .fun = prim_nspawnArgs});
    return op;
}

// The value `result` (JSON from the core) as a Nix value, with `system`
// carrying the argument's string context so that it still depends on the
// derivation it came from, and a lazy `nspawnArgs`.
void returnJson(EvalState & state, const std::string & json, const std::string & system, const compat::Context & context, Value & v)
{
    parseJSON(state, json, v);
    // The thunk's argument: the set as parsed (it needs only name and conf).
    auto self = state.allocValue();
    *self = v;
    auto args = state.allocValue();
    args->mkApp(nspawnArgsPrimOp(state), self);
    std::vector<std::pair<std::string_view, Value *>> extra{{"nspawnArgs", args}};
    if (!system.empty()) {
        auto s = state.allocValue();
        compat::mkStringWithContext(*s, system, context);
        extra.push_back({"system", s});
    }
    compat::setAttrs(state, v, extra);
}

// Where `link` (a profile or generation link) leads in the store, or "":
// a profile points at a generation link beside it, which points into the
// store. Three readlinks at most; canonPath would stat every component.
std::string resolvedTarget(const Path & link)
{
    Path p = link;
    for (int hops = 0; hops < 3; ++hops) {
        char buf[PATH_MAX];
        auto n = ::readlink(p.c_str(), buf, sizeof buf);
        if (n < 0)
            // Not a link (EINVAL): the chain ends at p. Missing: nothing there.
            return errno == EINVAL && hops > 0 ? p : "";
        std::string target(buf, n);
        p = !target.empty() && target[0] == '/' ? target : dirOf(p) + "/" + target;
    }
    return canonPath(p, true); // a longer chain than Nix makes
}

GenerationNumber currentGeneration(const Path & profile)
{
    auto n = rs::generation_number(std::string(baseNameOf(profile)), readLink(profile));
    if (n < 0) throw Error("profile '%s' points at '%s', which is not one of its generations", profile, readLink(profile));
    return n;
}

// Makes generation `to` (rollback: -1) current. Nix's switchGeneration()
// would take the profile lock, which the caller holds already.
void switchGenerationLocked(const Path & profile, int64_t to)
{
    auto [gens, current] = findGenerations(profile);
    std::vector<uint64_t> numbers;
    for (auto & g : gens) numbers.push_back(g.number);
    auto n = rs::switch_target(rust::Slice<const uint64_t>(numbers.data(), numbers.size()),
        current ? (int64_t) *current : -1, to);
    for (auto & g : gens)
        if (g.number == n) switchLink(profile, g.path);
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
                auto result = bridge(state, pos, self, [&] { return plan->describe(system, outcome); });
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
            bridge(state, pos, self, [&] { plan->check_system(store->toRealPath(system)); });
        }

        bridge(state, pos, self, [&] { plan->prepare_nix_dirs(); });
        auto profile = std::string(plan->profile());

        // Concurrent evaluations for the same container queue here, as
        // nix-env does on a profile.
        PathLocks lock;
        lockProfile(lock, profile);
        // A writer killed inside Nix's createGeneration leaves a temporary
        // link that Nix would take for a generation.
        bridge(state, pos, self, [&] { rs::remove_stale_temps(profile); });

        bool confChanged = bridge(state, pos, self, [&] { return plan->prepare_root_and_conf(); });
        auto before = resolvedTarget(profile);
        if (systemPath) {
            auto generation = compat::createGeneration(ref<LocalFSStore>(localStore), profile, *systemPath);
            // Nothing to write when the profile already points there.
            if (!pathExists(profile) || readLink(profile) != baseNameOf(generation))
                switchLink(profile, generation);
        } else
            bridge(state, pos, self, [&] { switchGenerationLocked(profile, plan->rollback() ? -1 : plan->switch_to()); });
        auto after = resolvedTarget(profile);

        rs::Outcome outcome{
            .generation = currentGeneration(profile),
            .changed = confChanged || before != after,
            .system_changed = before != after,
            .conf_changed = confChanged,
        };
        auto result = bridge(state, pos, self, [&] { return plan->describe(after, outcome); });
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
    auto profile = std::string(bridge(state, pos, self, [&] { return rs::generations_profile(json, rustSettings(state)); }));

    Generations gens;
    std::optional<GenerationNumber> current;
    if (pathExists(dirOf(profile))) {
        try {
            std::tie(gens, current) = findGenerations(profile);
        } catch (Error & e) {
            compat::addTrace(state, e, pos, "while listing generations with builtins.containerGenerations");
            throw;
        }
    }
    std::vector<Value *> items;
    for (auto & g : gens) {
        auto attrs = state.buildBindings(5);
        compat::mkInt(attrs.alloc("number"), g.number);
        attrs.alloc("link").mkString(g.path);
        attrs.alloc("path").mkString(resolvedTarget(g.path));
        compat::mkInt(attrs.alloc("creationTime"), g.creationTime);
        attrs.alloc("current").mkBool(current && *current == g.number);
        items.push_back(state.allocValue());
        items.back()->mkAttrs(attrs);
    }
    compat::mkList(state, v, items);
}

compat::RegisterPrimOp registerProfile({
    .name = "containerProfile", .args = {"attrs"}, .doc = docs::containerProfile, .fun = prim_containerProfile});
compat::RegisterPrimOp registerSpec({
    .name = "containerSpec", .args = {"attrs"}, .doc = docs::containerSpec, .fun = prim_containerSpec});
compat::RegisterPrimOp registerGenerations({
    .name = "containerGenerations", .args = {"name"}, .doc = docs::containerGenerations, .fun = prim_containerGenerations});

}

}
