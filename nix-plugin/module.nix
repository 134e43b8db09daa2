# NixOS module: containers managed by nix-container-plugin.
#
# The host's evaluation stays pure: each container's system is built as part
# of the host system, and nothing is written while evaluating. After
# activation (nixos-rebuild switch/test restarts the oneshot service
# nix-container-apply whenever the containers' systems or arguments change)
# the service records every container's system as a generation of its
# profile with builtins.containerProfile and runs `nix-container apply`,
# which reloads a container whose system alone changed, restarts one whose
# conf changed (if it started it), starts autoStart containers, and retires
# containers removed from `containers` (stops them and removes their conf
# file, keeping their state, as NixOS does). The containers run in units of
# their own (container@NAME.service, or a transient unit), so restarting
# this service never stops them.
#
# The plugin's settings go to nix.conf (nix.settings), where both Nix and
# the CLI read them.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.nix-container-plugin;
  pluginSettings = builtins.fromJSON (builtins.readFile ./settings.json);
  inherit (lib) mkOption mkEnableOption mkIf types;

  library = import ./. { inherit (cfg) evalConfig; };

  # containerProfile's attributes for each container, with the system as a
  # store path (built with the host).
  calls = lib.mapAttrsToList (name: c: c.extraArgs // {
    inherit name;
    inherit (c) autoStart;
    system = "${if c.system != null then c.system else library.systemOfConfig {
      inherit name;
      config = c.config;
      hostSystem = pkgs.stdenv.hostPlatform.system;
    }}";
  }) cfg.containers;
  callsFile = pkgs.writeText "nix-container-plugin-containers.json" (builtins.toJSON calls);
in
{
  options.services.nix-container-plugin = {
    enable = mkEnableOption "NixOS containers managed by nix-container-plugin";
    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ../package.nix { nix = cfg.nix; };
      defaultText = lib.literalExpression "pkgs.callPackage ../package.nix { nix = config.services.nix-container-plugin.nix; }";
      description = "The plugin and its CLI, built against `nix` (a plugin loads only into the Nix it was built for).";
    };
    plugin = mkOption {
      type = types.path;
      default = "${cfg.package}/lib/nix/plugins/nix-container-plugin.so";
      defaultText = lib.literalExpression ''"''${package}/lib/nix/plugins/nix-container-plugin.so"'';
      description = "The plugin to load (added to nix.settings.plugin-files).";
    };
    cli = mkOption {
      type = types.path;
      default = "${cfg.package}/bin/nix-container";
      defaultText = lib.literalExpression ''"''${package}/bin/nix-container"'';
      description = "The nix-container program.";
    };
    nix = mkOption {
      type = types.path;
      default = config.nix.package;
      defaultText = lib.literalExpression "config.nix.package";
      description = "The Nix whose `nix` loads the plugin at activation (the version the plugin is built for).";
    };
    evalConfig = mkOption {
      type = types.unspecified;
      default = import (pkgs.path + "/nixos/lib/eval-config.nix");
      defaultText = lib.literalExpression ''import (pkgs.path + "/nixos/lib/eval-config.nix")'';
      description = "How a container's configuration is evaluated (nixpkgs' eval-config).";
    };
    settings = mkOption {
      type = types.attrsOf (types.oneOf [ types.str types.bool types.int ]);
      default = { };
      example = { container-state-dir = "/srv/containers"; container-legacy-layout = true; };
      # Documented from the plugin's one settings table (rust/core
      # settings.rs; settings.json is its copy, kept equal by a test).
      description = "Plugin settings, written to nix.conf, where Nix and the nix-container CLI both read them:"
        + lib.concatMapStrings (s: "\n- `${s.name}` (${s.kind}; default: ${s.default_doc}): ${s.doc}") pluginSettings;
    };
    containers = mkOption {
      default = { };
      description = "Containers whose profile the plugin keeps and `nix-container apply` updates at activation.";
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
            description = "Start the container at activation (and boot) when it is not running.";
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
    nix.settings = cfg.settings // { plugin-files = [ cfg.plugin ]; };
    systemd.services.nix-container-apply = {
      description = "Update containers managed by nix-container-plugin";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      # A changed container (system or arguments) changes this file, and
      # switch-to-configuration restarts the unit: the hook runs after activation.
      restartTriggers = [ callsFile ];
      # NixOS gives a service coreutils, findutils, grep, sed and systemd;
      # the CLI also runs ip (private networks of containers it sets up).
      path = [ pkgs.iproute2 ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      # The systems are in the closure of this unit; their paths carry no context here.
      script = ''
        ${cfg.nix}/bin/nix --extra-experimental-features nix-command eval --impure --raw --expr \
          'builtins.concatStringsSep "\n" (map (c: let r = builtins.containerProfile c; in
             "''${r.name}: generation ''${toString r.generation}") (builtins.fromJSON (builtins.unsafeDiscardStringContext (builtins.readFile ${callsFile}))))'
        echo
        ${cfg.cli} apply --all --declared=${lib.concatStringsSep "," (lib.attrNames cfg.containers)}
      '';
    };
  };
}
