//! package.nix, flake.nix and the module's package default, checked as far
//! as a machine without nixpkgs allows: evaluated with the real nixpkgs lib
//! (lib.fileset, callPackage-style arguments), with stand-ins only for the
//! nixpkgs build functions (stdenv.mkDerivation, rustPlatform); then the
//! very source set package.nix builds from is built here as its phases do
//! (meson with -Dtests=false, ninja, meson install, cargo for the CLI,
//! offline), and the installed loader is loaded by the Nix under test.
//! Not done here: a build by nixpkgs' stdenv (no nixpkgs), importCargoLock's
//! vendoring (no fetching), `nix flake check` against nixpkgs.

use std::path::PathBuf;
use std::process::Command;

use ncp_integration_tests::*;

/// nixpkgs as far as package.nix and flake.nix touch it: the real lib, and
/// stand-ins for the build functions that record what they are given.
fn stub_pkgs() -> String {
    format!(
        "let lib = import {lib}/lib; self = {{ \
           inherit lib; \
           stdenv.mkDerivation = f: let a = f a; in a // {{ outPath = \"${{builtins.storeDir}}/00000000000000000000000000000000-${{a.pname}}-${{a.version}}\"; }}; \
           rustPlatform = {{ importCargoLock = x: x; cargoSetupHook = \"cargoSetupHook\"; }}; \
           meson = \"meson\"; ninja = \"ninja\"; pkg-config = \"pkg-config\"; cargo = \"cargo\"; rustc = \"rustc\"; \
           installShellFiles = \"installShellFiles\"; \
           stdenv.buildPlatform.canExecute = p: true; stdenv.hostPlatform = {{ }}; \
           boost = \"boost\"; nlohmann_json = \"nlohmann_json\"; boehmgc = \"boehmgc\"; \
           nix = {{ dev = \"nix-dev\"; }}; \
           callPackage = fn: args: let f = if builtins.isFunction fn then fn else import fn; \
             in f (builtins.intersectAttrs (builtins.functionArgs f) self // args); \
         }}; in self",
        lib = nixpkgs_lib().display()
    )
}

#[test]
fn package_flake_and_module_default_evaluate_with_the_real_lib() {
    let env = Env::new();
    let pkgs = stub_pkgs();
    let repo = repo();
    let p = env.eval_json(&format!(
        "let pkgs = {pkgs}; p = pkgs.callPackage {repo}/package.nix {{ }}; in {{ \
           inherit (p) pname version mesonFlags postInstall; native = p.nativeBuildInputs; inputs = p.buildInputs; \
           lock = toString p.cargoDeps.lockFile; src = \"${{p.src}}\"; main = p.meta.mainProgram; }}",
        repo = repo.display()
    ));
    assert_eq!(p["pname"], "nix-container-plugin");
    assert_eq!(p["mesonFlags"], serde_json::json!(["-Dtests=false"]));
    assert_eq!(
        p["inputs"][0], "nix-dev",
        "built against the given Nix's dev output"
    );
    assert!(p["native"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("cargoSetupHook")));
    assert!(p["native"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("installShellFiles")));
    assert!(
        p["postInstall"]
            .as_str()
            .unwrap()
            .contains("installManPage nix-container.1"),
        "{p}"
    );
    assert!(p["lock"].as_str().unwrap().ends_with("/Cargo.lock"));
    assert_eq!(p["main"], "nix-container");
    // The source set holds everything the build reads and nothing else.
    let src = PathBuf::from(p["src"].as_str().unwrap());
    for f in [
        "meson.build",
        "Cargo.lock",
        "cpp/plugin.cc",
        "cpp/compat.hh",
        "include/ncp/loader.hh",
        "rust/bridge/src/lib.rs",
        "rust/cli/src/main.rs",
        "rust/build-staticlib.sh",
        "nix-plugin/default.nix",
        "nix-plugin/module.nix",
        "tests/Cargo.toml",
    ] {
        assert!(
            src.join(f).exists(),
            "{f} is missing from package.nix's source"
        );
    }
    for f in ["target", "build", "scripts", "fuzz", "tests/hostile.rs"] {
        assert!(
            !src.join(f).exists(),
            "{f} should not be in package.nix's source"
        );
    }

    // flake.nix's outputs, given a nixpkgs of stand-ins.
    let f = env.eval_json(&format!(
        "let pkgs = {pkgs}; nixpkgs = {{ lib = pkgs.lib; legacyPackages.x86_64-linux = pkgs; outPath = \"/nixpkgs\"; }}; \
             o = (import {repo}/flake.nix).outputs {{ self = {{ }}; inherit nixpkgs; }}; \
             over = o.overlays.default pkgs pkgs; in {{ \
           pkg = o.packages.x86_64-linux.default.pname; overlay = over.nix-container-plugin.pname; \
           module = toString o.nixosModules.default; systems = builtins.attrNames o.packages; }}",
        repo = repo.display()
    ));
    assert_eq!(f["pkg"], "nix-container-plugin");
    assert_eq!(f["overlay"], "nix-container-plugin");
    assert_eq!(
        f["module"],
        format!("{}/nix-plugin/module.nix", repo.display())
    );
    assert_eq!(
        f["systems"],
        serde_json::json!(["aarch64-linux", "x86_64-linux"])
    );

    // The module's plugin and CLI default to the package, built against
    // the Nix it loads into.
    let m = env.eval_json(&format!(
        "let pkgs = {pkgs} // {{ stdenv = ({pkgs}).stdenv // {{ hostPlatform.system = \"x86_64-linux\"; }}; \
               writeText = n: t: \"/nix/store/x-${{n}}\"; iproute2 = \"iproute2\"; coreutils = \"c\"; findutils = \"f\"; \
               gnugrep = \"g\"; gnused = \"s\"; systemd = \"systemd\"; }}; \
             c = (import {fx}/host.nix {{ lib = pkgs.lib; inherit pkgs; modules = [ {{ \
               services.nix-container-plugin = {{ enable = true; nix = \"/some/nix\"; evalConfig = null; }}; }} ]; }}).config; in {{ \
           plugin = builtins.head c.nix.settings.plugin-files; \
           script = c.systemd.services.nix-container-apply.script; }}",
        fx = repo.join("tests/fixtures/nixos").display()
    ));
    // The stand-in's output, in this Nix's store (a store path is what
    // types.package accepts).
    let store = format!(
        "{}/00000000000000000000000000000000-nix-container-plugin-0.1.0",
        store_dir()
    );
    assert_eq!(
        m["plugin"],
        format!("{store}/lib/nix/plugins/nix-container-plugin.so")
    );
    assert!(
        m["script"]
            .as_str()
            .unwrap()
            .contains(&format!("{store}/bin/nix-container apply")),
        "{m}"
    );
    assert!(
        m["script"].as_str().unwrap().contains("/some/nix/bin/nix"),
        "{m}"
    );
}

#[test]
fn package_source_builds_and_installs_as_its_phases_do() {
    let env = Env::new();
    let src = env.eval_json(&format!(
        "let p = ({pkgs}).callPackage {repo}/package.nix {{ }}; in \"${{p.src}}\"",
        pkgs = stub_pkgs(),
        repo = repo().display()
    ));
    // A writable copy of the source set, as a build unpacks it.
    let work = env.path("src");
    let ok = Command::new("cp")
        .arg("-r")
        .arg(src.as_str().unwrap())
        .arg(&work)
        .status()
        .unwrap();
    assert!(ok.success());
    Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&work)
        .status()
        .unwrap();
    let pc = std::env::var("PKG_CONFIG_PATH").unwrap_or_default();
    let dest = env.path("out");
    // Cargo's downloads are the workspace's own (offline here, vendored
    // there); its dependencies' builds are kept between runs.
    let lix = nix_name() == "Lix";
    let target = cargo_target_dir().join(match (std::env::var_os("NCP_SID").is_some(), lix) {
        (true, true) => "package-sid-lix",
        (true, false) => "package-sid",
        _ => "package",
    });
    // The plugin's phases (meson), then postBuild's and postInstall's.
    let plugin_script = format!(
        "set -e; cd {w}; meson setup build -Dtests=false --prefix=/ --libdir=lib >/dev/null; \
         ninja -C build >/dev/null; DESTDIR={d} meson install -C build >/dev/null",
        w = work.display(),
        d = dest.display(),
    );
    let cli_script = format!(
        "set -e; cd {w}; \
         cargo build --release --locked --offline -q -p nix-container --target-dir {t}; \
         install -Dm755 {t}/release/nix-container {d}/bin/nix-container; \
         mkdir -p {d}/share/nix-container-plugin {d}/share/man/man1; \
         cp -r nix-plugin {d}/share/nix-container-plugin/nix-plugin; \
         {d}/bin/nix-container man > {d}/share/man/man1/nix-container.1",
        w = work.display(),
        d = dest.display(),
        t = cargo_target_dir().join("package").display()
    );
    let mut c = match std::env::var_os("NCP_SID") {
        // A Nix built in the sid chroot: its plugin is built there too.
        // (The CLI links no Nix: it is built on this host, to run here.)
        Some(sid) => {
            let mut c = Command::new(sid);
            c.args(["run", "-b"])
                .arg(env.dir.path())
                .args(["--", "env"])
                .arg(format!("PKG_CONFIG_PATH={pc}"));
            // Lix and plugins for it are built with clang (scripts/lix-sid.sh).
            if lix {
                c.args(["CC=clang", "CXX=clang++"]);
            }
            c.arg(format!("NCP_CARGO_TARGET_DIR={}/bridge", target.display()));
            c.args(["sh", "-c", &plugin_script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.env("NCP_CARGO_TARGET_DIR", target.join("bridge"))
                .args(["-c", &plugin_script]);
            c
        }
    };
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("sh")
        .args(["-c", &cli_script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let plugins = dest.join("lib/nix/plugins");
    let mut installed: Vec<String> = std::fs::read_dir(&plugins)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    installed.sort();
    assert_eq!(
        installed,
        ["nix-container-plugin-impl.so", "nix-container-plugin.so"]
    );
    let out = Command::new("nix")
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("--plugin-files")
        .arg(plugins.join("nix-container-plugin.so"))
        .args(["eval", "--expr", "builtins ? containerProfile"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "true",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(dest.join("bin/nix-container"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nix-container "));
    let man = std::fs::read_to_string(dest.join("share/man/man1/nix-container.1")).unwrap();
    assert!(man.contains(".TH nix-container"), "{man}");

    // The installed CLI creates a container with the installed plugin and
    // library alone: the source it was built from is gone.
    std::fs::remove_dir_all(&work).unwrap();
    let nixos = env.nixos_dir();
    let mut c = Command::new(dest.join("bin/nix-container"));
    c.env("NIX_CONFIG", NIX_CONFIG)
        .env_remove("NCP_PLUGIN")
        .args(env.root_flags())
        .args([
            "create",
            "pkgd",
            "--config",
            "ncpTest.label = \"pkg\";",
            "--nixos-path",
        ])
        .arg(&nixos);
    succeeded(&mut c);
    assert!(resolve(&env.profile("pkgd")).ends_with("nixos-system-ncp-test-pkgd-pkg"));
}
