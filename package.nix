# nix-container-plugin for nixpkgs' callPackage: the plugin, built against
# `nix` (a plugin loads only into the Nix it was built for: pass the Nix
# that will load it, e.g. config.nix.package), and the nix-container CLI.
#   pkgs.callPackage ./package.nix { nix = pkgs.nixVersions.latest; }
# Installs lib/nix/plugins/nix-container-plugin.so (the file to put in
# plugin-files; the plugin proper, -impl.so, sits beside it) and
# bin/nix-container.
{
  lib,
  stdenv,
  meson,
  ninja,
  pkg-config,
  rustPlatform,
  cargo,
  rustc,
  nix,
  boost,
  nlohmann_json,
  boehmgc,
}:
stdenv.mkDerivation (finalAttrs: {
  pname = "nix-container-plugin";
  version = "0.1.0";

  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [
      ./Cargo.toml
      ./Cargo.lock
      ./meson.build
      ./meson_options.txt
      ./cpp
      ./include
      ./rust
      # Workspace members cargo reads the manifests of.
      ./tests/Cargo.toml
      ./tests/support
    ];
  };

  cargoDeps = rustPlatform.importCargoLock { lockFile = ./Cargo.lock; };

  nativeBuildInputs = [
    meson
    ninja
    pkg-config
    rustPlatform.cargoSetupHook
    cargo
    rustc
  ];
  buildInputs = [
    nix.dev or nix
    boost
    nlohmann_json
    boehmgc
  ];

  # Not the test-only loader built for a Nix that does not exist.
  mesonFlags = [ (lib.mesonBool "tests" false) ];

  postBuild = ''
    (cd .. && cargo build --release --locked --offline -p nix-container --target-dir target-cli)
  '';
  postInstall = ''
    install -Dm755 ../target-cli/release/nix-container $out/bin/nix-container
  '';

  passthru.pluginFile = "${placeholder "out"}/lib/nix/plugins/nix-container-plugin.so";

  meta = {
    description = "Lightweight NixOS containers managed from inside Nix evaluation (a Nix plugin and its CLI)";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "nix-container";
  };
})
