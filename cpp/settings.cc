#include "settings.hh"

namespace ncp {

PluginSettings pluginSettings;
static nix::GlobalConfig::Register registerSettings(&pluginSettings);

rs::Settings rustSettings(nix::EvalState & state)
{
    return rs::Settings{
        .store_dir = state.store->storeDir,
        .nix_state_dir = compat::nixStateDir(),
        .state_dir = pluginSettings.stateDir.get(),
        .config_dir = pluginSettings.configDir.get(),
        .profiles_dir = pluginSettings.profilesDir.get(),
        .gcroots_dir = pluginSettings.gcrootsDir.get(),
        .legacy_layout = pluginSettings.legacyLayout.get(),
        .lock_timeout = pluginSettings.lockTimeout.get(),
    };
}

}
