//! `cargo xtask ci`: the one command a contributor (and CI) runs.

use crate::{TaskResult, cargo};

/// fmt, clippy, the workspace tests (doc tests included), then the integration run.
pub(crate) fn run() -> TaskResult {
    crate::setup::ensure_system_packages(true)?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace"])?;
    crate::integration::run(None)
}
