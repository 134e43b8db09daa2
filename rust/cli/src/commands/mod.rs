//! The commands. Each prints what it did (output.rs) and returns an error
//! whose kind decides the exit code (error.rs).

mod apply;
mod destroy;
mod inside;
mod lifecycle;
mod profile;

pub use apply::apply;
pub use destroy::destroy;
pub use inside::{reload, run};
pub use lifecycle::{
    exec_nspawn, install_unit, list, network_up, restart, start, status, stop, terminate,
};
pub use profile::{delete_generations, generations, rollback};
