//! What the commands print: progress for people (stdout, or stderr when
//! stdout carries JSON), and JSON for scripts.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::error::{failed, Result};

static JSON: AtomicBool = AtomicBool::new(false);

/// With --json, stdout carries only the JSON: progress goes to stderr.
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Prints what a command did (stdout, or stderr under --json).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {
        if $crate::output::json() {
            eprintln!($($t)*)
        } else {
            println!($($t)*)
        }
    };
}

pub fn print_json<T: Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| failed(e.to_string()))?;
    println!("{s}");
    Ok(())
}
