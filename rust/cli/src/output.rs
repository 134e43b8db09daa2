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

static COLOR: AtomicBool = AtomicBool::new(false);

/// Colours only on a terminal, and never with NO_COLOR set.
pub fn init_color() {
    use std::os::fd::AsFd;
    let tty = nix::unistd::isatty(std::io::stdout().as_fd()).unwrap_or(false)
        && nix::unistd::isatty(std::io::stderr().as_fd()).unwrap_or(false);
    COLOR.store(
        tty && std::env::var_os("NO_COLOR").is_none(),
        Ordering::Relaxed,
    );
}

#[derive(Clone, Copy)]
pub enum Color {
    Red,
    Green,
    Yellow,
}

/// `text` in `color` when colours are on.
pub fn paint(text: &str, color: Color) -> String {
    if !COLOR.load(Ordering::Relaxed) {
        return text.to_owned();
    }
    let code = match color {
        Color::Red => 31,
        Color::Green => 32,
        Color::Yellow => 33,
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}
