// The builtins' documentation, shown by `:doc builtins.NAME` in `nix repl`.
#pragma once

namespace ncp::docs {

inline const char * containerProfile = R"(
  Make *system* the current generation of the system profile of container
  *name*, prepare the container's root file system and write its conf file, so
  that `systemd-nspawn` (NixOS's `container@NAME.service`) boots it. Returns an
  attribute set describing the container.

  ```nix
  builtins.containerProfile {
    name = "web";                       # the container name rule: 1-11 of a-z 0-9 -, starts with a letter
    system = nixos.config.system.build.toplevel;  # a derivation or store path with an `init`
    privateNetwork = true;
    hostAddress = "10.231.136.1";
    localAddress = "10.231.136.2";
    bindMounts."/data" = { hostPath = "/srv/data"; isReadOnly = false; };
  }
  ```

  *system* is built if needed (with Nix's usual progress). When the profile's
  newest generation already points at it, no generation is added; when
  nothing at all would change, the call only reads. A running container is
  not touched: `nix-container apply NAME` reloads it (system changed) or
  restarts it (conf changed). Instead of
  *system*, `generation = N` switches to an existing generation and
  `rollback = true` to the one before the current (as `nix-env
  --switch-generation` / `--rollback`); these change only the profile, keep
  the container's conf file and take no other attributes but `name`.

  Optional attributes, as in NixOS's `containers.<name>`: `privateNetwork`,
  `hostAddress`, `localAddress`, `hostAddress6`, `localAddress6`,
  `localMacAddress`, `hostBridge`, `forwardPorts` (list of `{ protocol ?
  "tcp"; hostPort; containerPort ? hostPort; }`), `networkNamespace`,
  `interfaces`, `macvlans`, `bindMounts` (`{ MOUNT = { hostPath ? null;
  isReadOnly ? true; mountPoint ? MOUNT; }; }`), `ephemeral`, `privateUsers`
  (`"no"`, `"identity"`, `"pick"` or a UID), `extraFlags`, `autoStart`,
  `additionalCapabilities`, `tmpfs`, `copyResolvConf` (default `true`).
  Unknown attributes are errors.

  The result has `name`, `system`, `profile`, `profileDir`, `generation`,
  `changed` (`systemChanged || confChanged`), `systemChanged`, `confChanged`,
  `root`, `configFile`, `conf` (its text), `gcrootsDir`, `unit`
  (`"container@NAME.service"`), `nspawnArgs` (the full systemd-nspawn argv) and
  `nspawnEnv`.

  Where it differs from NixOS's own `containers.<name>`: the conf file has no
  `SYSTEM_PATH`, the container boots its profile (`PROFILE/init`), so a new
  generation or a rollback needs no conf change; `ephemeral`,
  `additionalCapabilities` and `tmpfs` become flags in `EXTRA_NSPAWN_FLAGS`
  (the generic `container@.service` honours them; `ephemeral` also adds
  `--link-journal=no`); `localMacAddress` (`LOCAL_MAC_ADDRESS`) is honoured by
  NixOS 26.05's start script, not by older ones; `copyResolvConf = false`
  (`COPY_RESOLV_CONF=0`) is ignored by start scripts that predate that key,
  which always copy. Values the start script's word splitting would change
  (white space, quotes, `$`, `*?[` in flags, …) are refused.

  Writes only below the plugin settings `container-state-dir`,

  `container-config-dir`, `container-profiles-dir` and `container-gcroots-dir`
  (defaults: the NixOS layout), plus Nix's own GC root for each generation.
  Not available in pure evaluation mode (use `--impure`) or restricted mode;
  `builtins.containerSpec` computes the same description without side effects.
)";

inline const char * nspawnArgs = R"(
  The systemd-nspawn command line of a container described by
  `builtins.containerProfile` or `builtins.containerSpec` (the `nspawnArgs`
  attribute of their result, computed when it is used).
)";

inline const char * containerSpec = R"(
  Describe the container that `builtins.containerProfile` would prepare for the
  same arguments, without building or writing anything: the same attribute set
  minus `generation`, `changed`, `systemChanged` and `confChanged`. Works in
  pure evaluation mode. Example:

  ```nix
  (builtins.containerSpec { name = "web"; system = toplevel; }).nspawnArgs
  ```
)";

inline const char * containerGenerations = R"(
  List the generations of container *name*'s system profile, oldest first, as
  `nix-env -p PROFILE --list-generations` does: each is
  `{ number, path, link, creationTime, current }`, where `path` is the store
  path and `creationTime` seconds since the epoch. Takes a name or `{ name }`.
  A container without a profile has no generations (`[ ]`). Impure: not
  available in pure evaluation mode.

  ```nix
  map (g: g.number) (builtins.containerGenerations "web")
  ```
)";

}
