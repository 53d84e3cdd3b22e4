//! `cargo xtask ci`: the one command a contributor (and CI) runs.

use crate::{TaskResult, cargo};

/// fmt, clippy, the API docs without a warning, every feature combination of every crate,
/// the workspace tests (doc tests included), then the integration run.
pub(crate) fn run() -> TaskResult {
    crate::setup::ensure_system_packages(true)?;
    crate::setup::ensure_cargo_hack()?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    docs()?;
    feature_powerset()?;
    cargo(&["test", "--workspace"])?;
    crate::integration::run(None)
}

/// `cargo doc` of the workspace's crates with rustdoc's warnings as errors: a broken link,
/// or a public item whose docs point at a private one, leaves users a dead end.
fn docs() -> TaskResult {
    crate::cargo_with_env(
        &["doc", "--no-deps", "--workspace"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

/// `cargo check` of every crate with each combination of its features (`--no-default-features`
/// and the defaults included), without dev-dependencies, so that a feature that only builds
/// because a test or another combination turns on something else is caught. Clippy and the
/// tests above build the default features only. `--keep-going` names every combination that
/// fails, not just the first. (`--no-dev-deps` takes the dev-dependencies out of the real
/// Cargo.toml files while it runs, and puts them back.)
fn feature_powerset() -> TaskResult {
    cargo(&[
        "hack",
        "check",
        "--workspace",
        "--feature-powerset",
        "--no-dev-deps",
        "--keep-going",
    ])
}
