# The one check of a flake's container configuration: `attr` names
# nixosConfigurations.ATTR, `c` is it. Used by default.nix's systemOfFlake
# and, as text (it refers to no path, so pure evaluation takes it), by
# `nix-container create --flake` (rust/cli/src/nix_command.rs).
attr: c:
if c.config.boot.isContainer or false then c.config.system.build.toplevel
else throw "nixosConfigurations.${attr} does not set boot.isContainer = true, which a container's system needs"
