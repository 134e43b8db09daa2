# The Nix side of nix-container-plugin: the routes from a NixOS
# configuration (or a flake's nixosConfigurations) to a container, on top of
# the builtins the plugin adds. Needs the plugin loaded (nix --plugin-files
# …/nix-container-plugin.so, or plugin-files in nix.conf).
#
#   let containers = import ./nix-plugin { };   # uses <nixpkgs>
#   in containers.fromConfig { name = "web"; config = { services.nginx.enable = true; }; }
#
# On a real host evalConfig is nixpkgs' nixos/lib/eval-config.nix; the tests
# pass a fixture with the same interface (modules in,
# config.system.build.toplevel out), as this machine has no nixpkgs.
{ evalConfig ? import <nixpkgs/nixos/lib/eval-config.nix> }:
let
  builtin = name:
    builtins.${name} or (throw
      "builtins.${name} is missing: load nix-container-plugin (nix --plugin-files …/nix-container-plugin.so, or plugin-files = … in nix.conf)");

  # The attributes that choose the system; everything else goes to the builtin.
  routeAttrs = [ "config" "modules" "specialArgs" "hostSystem" "flake" "attr" ];
  containerArgs = args: builtins.removeAttrs args routeAttrs;

  # As NixOS's containers.<name>.config: a container system, named after the
  # container. hostSystem: the platform to evaluate for; pure evaluation (a
  # flake) has no builtins.currentSystem, and null leaves it to the
  # configuration (nixpkgs.hostPlatform), as eval-config does.
  systemOfConfig = { name, config ? { }, modules ? [ ], specialArgs ? { }, hostSystem ? builtins.currentSystem or null, ... }:

    (evalConfig {
      system = hostSystem;
      inherit specialArgs;
      modules = [
        ({ lib, ... }: {
          boot.isContainer = true;
          networking.hostName = lib.mkDefault name;
        })
        config
      ] ++ modules;
    }).config.system.build.toplevel;

  systemOfFlake = { name, flake, attr ? name, ... }:
    let
      configs = flake.nixosConfigurations or (throw "the flake has no nixosConfigurations output");
      c = configs.${attr} or (throw
        "the flake has no nixosConfigurations.${attr} (it has: ${builtins.concatStringsSep ", " (builtins.attrNames configs)})");
    in
    import ./flake-system.nix attr c;
in
rec {
  /* The config route: evaluate `config` (a NixOS module; more in `modules`)
     as a container and make it the container's current generation.
     Other attributes are builtins.containerProfile's (privateNetwork,
     bindMounts, autoStart, …). */
  fromConfig = args: builtin "containerProfile" (containerArgs args // { system = systemOfConfig args; });

  /* The flake route: `flake.nixosConfigurations.${attr}` (attr defaults to
     the name), which must set boot.isContainer = true. */
  fromFlake = args: builtin "containerProfile" (containerArgs args // { system = systemOfFlake args; });

  /* Many containers, one evaluation: `config` (and `modules`) is evaluated
     once, with networking.hostName left empty, so each container gets its
     name as host name from systemd-nspawn (NixOS writes no /etc/hostname
     for an empty hostName and systemd keeps the one it was given).
     `containers` maps each container's name to its other containerProfile
     attributes (privateNetwork, addresses, bindMounts, …). Returns the
     results by name. */
  manyFromConfig = { containers, ... }@args:
    let system = systemOfConfig (builtins.removeAttrs args [ "containers" ] // { name = ""; });
    in builtins.mapAttrs
      (name: attrs: builtin "containerProfile" (containerArgs attrs // { inherit name system; }))
      containers;

  /* Pure: what fromConfig would prepare, without writing anything. */

  specOfConfig = args: builtin "containerSpec" (containerArgs args // { system = systemOfConfig args; });

  inherit systemOfConfig systemOfFlake;
}
