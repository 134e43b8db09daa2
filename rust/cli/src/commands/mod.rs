//! The commands. Each prints what it did (output.rs) and returns an error
//! whose kind decides the exit code (error.rs).

mod apply;
mod create;
mod destroy;
mod info;
pub mod inside;
mod lifecycle;
mod profile;

pub use apply::apply;
pub use create::{config_module, create, create_source, flake_ref, nixos_path, update};
pub use destroy::{destroy, reset};
pub use info::{logs, network_plan, show_host_key, show_ip};
pub use inside::{login, reload, root_login, run};
pub use lifecycle::{
    exec_nspawn, install_unit, list, network_up, restart, start, status, stop, terminate,
};
pub use profile::{delete_generations, generations, rollback};
