# NixOS module: containers managed by nix-container-plugin.
#
# The host's evaluation stays pure: each container's system is built as part
# of the host system, and nothing is written while evaluating. After
# activation (nixos-rebuild switch/test restarts the oneshot service
# nix-container-apply whenever the containers' systems or arguments change)
# the service records every container's system as a generation of its
# profile with builtins.containerProfile and runs `nix-container apply
# --all`, which reloads a container whose system alone changed, restarts one
# whose conf changed and starts autoStart containers.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.nix-container-plugin;
  inherit (lib) mkOption mkEnableOption mkIf types;

  library = import ./. { inherit (cfg) evalConfig; };

  # containerProfile's attributes for each container, with the system as a
  # store path (built with the host).
  calls = lib.mapAttrsToList (name: c: c.extraArgs // {
    inherit name;
    inherit (c) autoStart;
    system = "${if c.system != null then c.system else library.systemOfConfig { inherit name; config = c.config; }}";
  }) cfg.containers;
  callsFile = pkgs.writeText "nix-container-plugin-containers.json" (builtins.toJSON calls);

  # `--option KEY VALUE` for nix, `--KEY VALUE` for the CLI: the same roots.
  nixOptions = lib.concatStringsSep " "
    (lib.mapAttrsToList (k: v: "--option ${k} ${lib.escapeShellArg v}") cfg.settings);
  cliOptions = lib.concatStringsSep " "
    (lib.mapAttrsToList (k: v: "--${k} ${lib.escapeShellArg v}") cfg.settings);
in
{
  options.services.nix-container-plugin = {
    enable = mkEnableOption "NixOS containers managed by nix-container-plugin";
    plugin = mkOption {
      type = types.path;
      description = "The plugin to load: lib/nix/plugins/nix-container-plugin.so of its package.";
    };
    cli = mkOption {
      type = types.path;
      description = "The nix-container program (bin/nix-container of its package).";
    };
    nix = mkOption {
      type = types.path;
      default = config.nix.package;
      defaultText = "config.nix.package";
      description = "The Nix whose `nix` loads the plugin at activation (the version the plugin was built for).";
    };
    evalConfig = mkOption {
      type = types.unspecified;
      default = import (pkgs.path + "/nixos/lib/eval-config.nix");
      defaultText = "import (pkgs.path + \"/nixos/lib/eval-config.nix\")";
      description = "How a container's configuration is evaluated (nixpkgs' eval-config).";
    };
    settings = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = { container-state-dir = "/srv/containers"; };
      description = "Plugin settings (container-state-dir, container-config-dir, …), given to nix and to the CLI alike.";
    };
    containers = mkOption {
      default = { };
      description = "Containers whose profile the plugin keeps and `apply --all` updates at activation.";
      type = types.attrsOf (types.submodule {
        options = {
          config = mkOption {
            type = types.deferredModule;
            default = { };
            description = "The container's NixOS configuration (evaluated with boot.isContainer = true).";
          };
          system = mkOption {
            type = types.nullOr types.path;
            default = null;
            description = "A prebuilt system instead of `config` (the path route).";
          };
          autoStart = mkOption {
            type = types.bool;
            default = false;
            description = "Start the container at activation when it is not running.";
          };
          extraArgs = mkOption {
            type = types.attrs;
            default = { };
            example = { privateNetwork = true; hostAddress = "10.231.0.1"; localAddress = "10.231.0.2"; };
            description = "Further attributes of builtins.containerProfile (network, bind mounts, flags).";
          };
        };
      });
    };
  };

  config = mkIf cfg.enable {
    nix.settings.plugin-files = [ cfg.plugin ];
    systemd.services.nix-container-apply = {
      description = "Update containers managed by nix-container-plugin";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      # A changed container (system or arguments) changes this file, and
      # switch-to-configuration restarts the unit: the hook runs after activation.
      restartTriggers = [ callsFile ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      # The systems are in the closure of this unit; their paths carry no context here.
      script = ''
        ${cfg.nix}/bin/nix --extra-experimental-features nix-command \
          --plugin-files ${cfg.plugin} ${nixOptions} eval --impure --raw --expr \
          'builtins.concatStringsSep "\n" (map (c: let r = builtins.containerProfile c; in
             "''${r.name}: generation ''${toString r.generation}") (builtins.fromJSON (builtins.unsafeDiscardStringContext (builtins.readFile ${callsFile}))))'
        echo
        ${cfg.cli} ${cliOptions} apply --all
      '';
    };
  };
}
