# nix-container-plugin for nixpkgs' callPackage: the plugin, built against
# `nix` (a plugin loads only into the Nix it was built for: pass the Nix
# that will load it, e.g. config.nix.package), and the nix-container CLI.
#   pkgs.callPackage ./package.nix { nix = pkgs.nixVersions.latest; }
# Installs lib/nix/plugins/nix-container-plugin.so (the file to put in
# plugin-files; the plugin proper, -impl.so, sits beside it),
# bin/nix-container with its man page and shell completions, and the Nix
# library (share/nix-container-plugin/nix-plugin: the config and flake
# routes, the NixOS module), which `nix-container create` evaluates.
{
  lib,
  stdenv,
  meson,
  ninja,
  pkg-config,
  installShellFiles,
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
      ./nix-plugin
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
    installShellFiles
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
    mkdir -p $out/share/nix-container-plugin
    cp -r ../nix-plugin $out/share/nix-container-plugin/nix-plugin
  '' + lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    # Both come from the CLI's own definition of its command line.
    $out/bin/nix-container man > nix-container.1
    installManPage nix-container.1
    installShellCompletion --cmd nix-container \
      --bash <($out/bin/nix-container completions bash) \
      --zsh <($out/bin/nix-container completions zsh) \
      --fish <($out/bin/nix-container completions fish)
  '';

  passthru.pluginFile = "${placeholder "out"}/lib/nix/plugins/nix-container-plugin.so";

  meta = {
    description = "Lightweight NixOS containers managed from inside Nix evaluation (a Nix plugin and its CLI)";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "nix-container";
  };
})
