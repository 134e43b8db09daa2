#include "settings.hh"

namespace ncp {

namespace {

template<typename T>
std::shared_ptr<void> make(nix::Config * config, const rs::SettingRow & row)
{
    // Nix's own parser of the kind reads the table's default, so that Nix
    // documents it (nix show-config) as the table states it.
    nix::Config scratch;
    nix::Setting<T> parsed(&scratch, T{}, std::string(row.name), "");
    parsed.set(std::string(row.default_value));
    return std::make_shared<nix::Setting<T>>(config, parsed.get(), std::string(row.name), std::string(row.doc));
}

}

PluginSettings::PluginSettings()
{
    for (auto & row : rs::setting_table()) {
        switch (row.kind) {
        case rs::SettingKind::Path: owned.push_back(make<std::string>(this, row)); break;
        case rs::SettingKind::Bool: owned.push_back(make<bool>(this, row)); break;
        case rs::SettingKind::Seconds: owned.push_back(make<unsigned int>(this, row)); break;
        }
    }
}

PluginSettings pluginSettings;
[[maybe_unused]] static bool registered = (compat::registerSettings(pluginSettings), true);

rs::Settings rustSettings(nix::EvalState & state)
{
    rs::Settings s{.store_dir = compat::storeDir(*compat::store(state)), .nix_state_dir = compat::nixStateDir(), .values = {}};
    std::map<std::string, nix::AbstractConfig::SettingInfo> values;
    pluginSettings.getSettings(values);
    for (auto & [name, info] : values)
        s.values.push_back(rs::SettingValue{.name = name, .value = info.value});
    return s;
}

}
