// A builtin's argument as JSON for the Rust core, and the core's JSON answer
// back as a Nix value. Nix's printValueAsJSON would copy path values into the
// store (a bind mount's host path must stay a host path), so this small walk
// does the one direction; Nix's parseJSON does the other.
#pragma once

#include <string>

#include "compat.hh"

namespace ncp {

// Forces `v` deeply. Derivations become their outPath; paths stay paths;
// string contexts are added to `context`. Functions and over-deep nesting are
// evaluation errors at `pos`.
std::string valueToJson(nix::EvalState & state, nix::Value & v, compat::PosArg pos, compat::Context & context);

}
