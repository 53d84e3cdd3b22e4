//! Where things are: the workspace, cargo's target directory (wherever `CARGO_TARGET_DIR`,
//! `build.target-dir` or the default put it), the binaries built into it, and the daemon's
//! package.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The cargo package that holds the `eventbus` daemon binary: the one name every build of
/// the daemon uses.
pub(crate) const DAEMON_PACKAGE: &str = "bus-daemon";

/// The daemon's binary target, in [`DAEMON_PACKAGE`].
pub(crate) const DAEMON_BIN: &str = "eventbus";

/// A cargo build profile and the directory of the target directory it builds into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    /// `cargo build` (the `dev` profile, in `debug/`).
    Dev,
    /// `cargo build --release` (in `release/`): thin LTO across crates.
    Release,
    /// `cargo build --profile release-no-lto` (in `release-no-lto/`): the release profile
    /// without LTO across crates, as a program using bus-core as a library builds it by
    /// default.
    ReleaseNoLto,
}

impl Profile {
    /// The profile's directory under the target directory.
    pub(crate) fn dir_name(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
            Profile::ReleaseNoLto => "release-no-lto",
        }
    }

    /// The `cargo build` flags that select this profile.
    pub(crate) fn cargo_flags(self) -> &'static [&'static str] {
        match self {
            Profile::Dev => &[],
            Profile::Release => &["--release"],
            Profile::ReleaseNoLto => &["--profile", "release-no-lto"],
        }
    }
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory for this workspace, as `cargo metadata` reports it (asked once
/// per run).
pub(crate) fn target_dir() -> Result<PathBuf, String> {
    static TARGET_DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TARGET_DIR.get_or_init(ask_cargo_for_target_dir).clone()
}

fn ask_cargo_for_target_dir() -> Result<PathBuf, String> {
    target_dir_of(&workspace_metadata()?)
}

/// What `cargo metadata --format-version 1 --no-deps` prints for this workspace (its JSON).
pub(crate) fn workspace_metadata() -> Result<Vec<u8>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("could not run `{cargo} metadata`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo metadata --format-version 1 --no-deps` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// The `target_directory` of `cargo metadata` output.
fn target_dir_of(metadata: &[u8]) -> Result<PathBuf, String> {
    let metadata: serde_json::Value = serde_json::from_slice(metadata)
        .map_err(|e| format!("`cargo metadata` printed no JSON: {e}"))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "`cargo metadata` output has no target_directory".to_owned())
}

/// A directory of xtask's own under the target directory (its venv, work files, caches).
pub(crate) fn in_target(name: &str) -> Result<PathBuf, String> {
    Ok(target_dir()?.join(name))
}

/// A binary that `cargo build` (with `profile`'s flags) put in the target directory.
pub(crate) fn built_binary(profile: Profile, name: &str) -> Result<PathBuf, String> {
    Ok(target_dir()?.join(profile.dir_name()).join(name))
}

/// An example that `cargo build --example` (with `profile`'s flags) put in the target
/// directory.
pub(crate) fn built_example(profile: Profile, name: &str) -> Result<PathBuf, String> {
    Ok(target_dir()?
        .join(profile.dir_name())
        .join("examples")
        .join(name))
}

/// Builds the daemon binary with `profile`, cargo's progress shown, and returns its path.
pub(crate) fn build_daemon(profile: Profile, quiet: bool) -> Result<PathBuf, String> {
    let mut args = vec!["build"];
    if quiet {
        args.push("--quiet");
    }
    args.extend(profile.cargo_flags());
    args.extend(["-p", DAEMON_PACKAGE, "--bin", DAEMON_BIN]);
    crate::cargo(&args)?;
    let binary = built_binary(profile, DAEMON_BIN)?;
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "`cargo {}` succeeded but {} does not exist",
            args.join(" "),
            binary.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_target_directory_from_cargo_metadata() {
        let json = br#"{"packages":[],"target_directory":"/tmp/somewhere else/t","version":1}"#;
        assert_eq!(
            target_dir_of(json).unwrap(),
            PathBuf::from("/tmp/somewhere else/t")
        );
        assert!(
            target_dir_of(b"{}")
                .unwrap_err()
                .contains("target_directory")
        );
        assert!(
            target_dir_of(b"warning: x")
                .unwrap_err()
                .contains("no JSON")
        );
    }

    #[test]
    fn binaries_are_under_the_profile_directory_cargo_reports() {
        let target = target_dir().unwrap();
        assert_eq!(
            built_binary(Profile::Release, DAEMON_BIN).unwrap(),
            target.join("release").join("eventbus")
        );
        assert_eq!(
            built_example(Profile::Dev, "x").unwrap(),
            target.join("debug/examples/x")
        );
    }

    #[test]
    fn the_no_lto_profile_is_the_workspaces_own() {
        // Cargo names a custom profile's directory after the profile, and the workspace's
        // Cargo.toml must define it: `cargo xtask bench` builds with it.
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        let name = Profile::ReleaseNoLto.dir_name();
        assert!(manifest.contains(&format!("[profile.{name}]")), "{name}");
        assert_eq!(
            Profile::ReleaseNoLto.cargo_flags(),
            ["--profile", name].as_slice()
        );
        assert_eq!(
            built_example(Profile::ReleaseNoLto, "x").unwrap(),
            target_dir().unwrap().join(name).join("examples/x")
        );
    }

    #[test]
    fn honours_cargo_target_dir() {
        // A child cargo with CARGO_TARGET_DIR set reports that directory, which is what
        // `target_dir` returns when xtask runs with it set.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let dir = std::env::temp_dir().join("xtask-target-dir-test");
        let out = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .env("CARGO_TARGET_DIR", &dir)
            .current_dir(workspace_root())
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(target_dir_of(&out.stdout).unwrap(), dir);
    }
}
