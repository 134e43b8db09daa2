# The main job's example: one container, "demo", whose system is the small
# NixOS-shaped test system (busybox-static from Debian, built into the store
# here; on a NixOS host this would be a real `system.build.toplevel`).
builtins.containerProfile {
  name = "demo";
  system = import ../tests/fixtures/test-system.nix { label = "demo"; };
  # A read-only bind mount, to show how NixOS options map to the conf file.
  bindMounts."/srv/demo" = { hostPath = "/usr/share/doc/nix-bin"; };
}
