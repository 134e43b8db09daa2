#include "value-json.hh"

#include <nlohmann/json.hpp>

namespace ncp {

namespace {

// Deeper than any container description; stops a hostile value from
// exhausting the stack.
constexpr int maxDepth = 32;

// Where a value sits in the argument, kept as a chain on the stack and
// spelt out (as the core's errors do: `bindMounts./x.hostPath`,
// `extraFlags[0]`) only when an error names it.
struct Where
{
    const Where * up;
    std::string_view attr;
    size_t index; // npos: an attribute
    static constexpr size_t npos = size_t(-1);
};

std::string attribute(const Where * w)
{
    if (!w) return "the argument";
    std::vector<const Where *> chain;
    for (; w; w = w->up) chain.push_back(w);
    std::string path;
    for (auto i = chain.rbegin(); i != chain.rend(); ++i) {
        if ((*i)->index != Where::npos)
            path += "[" + std::to_string((*i)->index) + "]";
        else
            path += (path.empty() ? "" : ".") + std::string((*i)->attr);
    }
    return "attribute '" + path + "'";
}

nlohmann::json toJson(nix::EvalState & state, nix::Value & v, compat::PosArg pos, compat::Context & context, int depth, const Where * where)
{
    if (depth > maxDepth)
        compat::throwEvalError(state, pos, attribute(where) + ": value nested more than " + std::to_string(maxDepth) + " levels deep");
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
        for (size_t i = 0; i < v.listSize(); ++i) {
            Where here{where, {}, i};
            out.push_back(toJson(state, compat::listElem(v, i), pos, context, depth + 1, &here));
        }
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
            Where here{where, name, Where::npos};
            out[name] = toJson(state, compat::attrValue(attr), pos, context, depth + 1, &here);
        }
        return out;
    }
    default:
        compat::throwEvalError(state, pos, attribute(where) + ": cannot pass " + std::string(nix::showType(v)) + " to a container builtin");
    }
}

}

std::string valueToJson(nix::EvalState & state, nix::Value & v, compat::PosArg pos, compat::Context & context)
{
    // Nix strings may hold any bytes; invalid UTF-8 becomes U+FFFD, which the
    // core then refuses wherever it matters (names, paths, flags).
    return toJson(state, v, pos, context, 0, nullptr).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}
