//! The plugin's settings as flags of every command, made from the core's
//! one table (ncp_core::settings::TABLE), and their values: `--NAME`, then
//! NCP_NAME (upper case, `_` for `-`), then nix.conf / NIX_CONFIG (read by
//! the same table), then the table's default. A new row in the table is a
//! new flag here, with its help, and is passed on to the plugin by create.

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use ncp_core::settings::{Kind, Settings, TABLE};

/// The settings given as flags or NCP_* variables, by name.
#[derive(Debug, Default, Clone)]
pub struct SettingArgs {
    pub given: Vec<(&'static str, String)>,
}

pub fn env_name(setting: &str) -> String {
    format!("NCP_{}", setting.to_uppercase().replace('-', "_"))
}

impl Args for SettingArgs {
    fn augment_args(cmd: Command) -> Command {
        TABLE.iter().fold(cmd, |cmd, row| {
            let arg = Arg::new(row.name)
                .long(row.name)
                .global(true)
                // clap keeps &'static names: a few bytes per setting, once.
                .env(&*Box::leak(env_name(row.name).into_boxed_str()))
                .help(format!(
                    "{} [nix.conf: {}; default {}]",
                    row.doc, row.name, row.default_doc
                ));
            cmd.arg(match row.kind {
                Kind::Path => arg.value_name("DIR"),
                Kind::Seconds => arg.value_name("SECONDS"),
                Kind::Bool => arg
                    .value_name("BOOL")
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true"),
            })
        })
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut s = SettingArgs::default();
        s.update_from_arg_matches(m)?;
        Ok(s)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for row in TABLE {
            if let Some(v) = m.get_one::<String>(row.name) {
                self.given.retain(|(n, _)| *n != row.name);
                self.given.push((row.name, v.clone()));
            }
        }
        Ok(())
    }
}

impl SettingArgs {
    /// The settings in force: these flags, else `conf` (nix.conf and
    /// NIX_CONFIG as Nix reads them), else the defaults. An unparsable
    /// value is an error naming where it came from.
    pub fn resolve(
        &self,
        conf: &dyn Fn(&[&str]) -> std::collections::BTreeMap<String, String>,
    ) -> Result<Settings, String> {
        let names: Vec<&str> = TABLE.iter().map(|r| r.name).collect();
        let from_conf = conf(&names);
        let mut s = Settings::new();
        for row in TABLE {
            let flag = self.given.iter().find(|(n, _)| *n == row.name);
            let (value, whence) = match (flag, from_conf.get(row.name)) {
                (Some((_, v)), _) => (v, format!("--{} (or {})", row.name, env_name(row.name))),
                (None, Some(v)) => (v, "nix.conf".to_owned()),
                (None, None) => continue,
            };
            s.set(row.name, value)
                .map_err(|e| format!("{whence}: {e}"))?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        s: SettingArgs,
    }

    #[test]
    fn every_setting_is_a_flag_and_flags_win_over_nix_conf() {
        for row in TABLE {
            let v = if row.kind == Kind::Bool { "true" } else { "7" };
            let t = T::try_parse_from(["t", &format!("--{}={v}", row.name)]).unwrap();
            assert_eq!(t.s.given, vec![(row.name, v.to_string())]);
        }
        let t = T::try_parse_from([
            "t",
            "--container-legacy-layout",
            "--container-lock-timeout",
            "5",
        ])
        .unwrap();
        let conf = |_: &[&str]| {
            [
                ("container-lock-timeout", "9"),
                ("container-state-dir", "/srv/c"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let s = t.s.resolve(&conf).unwrap();
        assert!(s.legacy_layout);
        assert_eq!(s.lock_timeout_secs, 5);
        assert_eq!(s.state_dir, "/srv/c");
        let bad = |_: &[&str]| {
            [("container-legacy-layout".to_string(), "maybe".to_string())]
                .into_iter()
                .collect()
        };
        let e = T::try_parse_from(["t"])
            .unwrap()
            .s
            .resolve(&bad)
            .unwrap_err();
        assert!(
            e.starts_with("nix.conf: setting 'container-legacy-layout'"),
            "{e}"
        );
    }
}
