{
  description = "nix-container-plugin: lightweight NixOS containers managed from inside Nix evaluation";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # Built against the Nix of the same nixpkgs; a host running another
      # Nix uses the module (whose package follows config.nix.package) or
      # callPackage ./package.nix { nix = thatNix; }.
      packages = forAll (pkgs: { default = pkgs.callPackage ./package.nix { }; });

      overlays.default = final: prev: {
        nix-container-plugin = final.callPackage ./package.nix { };
      };

      # services.nix-container-plugin; its package defaults to this
      # package built against config.nix.package.
      nixosModules.default = ./nix-plugin/module.nix;

      # The config and flake routes, given nixpkgs' eval-config.
      lib = import ./nix-plugin { evalConfig = import "${nixpkgs}/nixos/lib/eval-config.nix"; };
    };
}
