# The main job's example: one container, "demo", whose system boots a real
# systemd as PID 1 (tests/fixtures/systemd-system.nix: Debian 12's systemd
# under a NixOS-shaped toplevel, built here without nixpkgs; on a NixOS host
# this would be a real `system.build.toplevel`). `base`: Debian 12's systemd
# in the store (scripts/systemd-system.sh add). `version` 2 adds a service,
# which `nix-container reload` starts without a reboot.
{ base, version ? 1 }:
builtins.containerProfile {
  name = "demo";
  system = import ../tests/fixtures/systemd-system.nix {
    inherit base;
    label = "demo-${toString version}";
    units = {
      "hello.service" = ''
        [Unit]
        Description=Says hello once the container is up
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/sh -c 'echo hello from the container > /run/hello'
      '';
    } // (if version >= 2 then {
      "greeter.service" = ''
        [Unit]
        Description=A service the second version adds
        [Service]
        ExecStart=/bin/sleep infinity
      '';
    } else { });
  };
  # A read-only bind mount, to show how NixOS options map to the conf file.
  bindMounts."/srv/demo" = { hostPath = "/usr/share/doc/nix-bin"; };
}
