#include "value-json.hh"

#include <nlohmann/json.hpp>

namespace ncp {

namespace {

// Deeper than any container description; stops a hostile value from
// exhausting the stack.
constexpr int maxDepth = 32;

// `path` names the value as the core's errors do: `bindMounts./x.hostPath`, `extraFlags[0]`.
std::string attribute(const std::string & path)
{
    return path.empty() ? "the argument" : "attribute '" + path + "'";
}

nlohmann::json toJson(nix::EvalState & state, nix::Value & v, compat::PosArg pos, compat::Context & context, int depth, const std::string & path)
{
    if (depth > maxDepth)
        compat::throwEvalError(state, pos, attribute(path) + ": value nested more than " + std::to_string(maxDepth) + " levels deep");
    compat::forceValue(state, v, pos);
    switch (v.type()) {
    case nix::nNull:
        return nullptr;
    case nix::nBool:
        return compat::boolOf(v);
    case nix::nInt:
        return compat::intOf(v);
    case nix::nFloat:
        return compat::floatOf(v);
    case nix::nString:
        compat::copyContext(v, context);
        return std::string(compat::stringOf(v));
    case nix::nPath:
        return compat::pathOf(v);
    case nix::nList: {
        auto out = nlohmann::json::array();
        for (size_t i = 0; i < v.listSize(); ++i)
            out.push_back(toJson(state, compat::listElem(v, i), pos, context, depth + 1, path + "[" + std::to_string(i) + "]"));
        return out;
    }
    case nix::nAttrs: {
        if (state.isDerivation(v)) {
            if (auto outPath = compat::findAttr(state, v, "outPath"))
                return compat::coerceToString(state, pos, *outPath, context);
        }
        auto out = nlohmann::json::object();
        for (auto & attr : compat::attrsOf(v)) {
            std::string name = compat::symbolName(state, attr.name);
            out[name] = toJson(state, *attr.value, pos, context, depth + 1, path.empty() ? name : path + "." + name);
        }
        return out;
    }
    default:
        compat::throwEvalError(state, pos, attribute(path) + ": cannot pass " + std::string(nix::showType(v)) + " to a container builtin");
    }
}

}

std::string valueToJson(nix::EvalState & state, nix::Value & v, compat::PosArg pos, compat::Context & context)
{
    // Nix strings may hold any bytes; invalid UTF-8 becomes U+FFFD, which the
    // core then refuses wherever it matters (names, paths, flags).
    return toJson(state, v, pos, context, 0, "").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}
