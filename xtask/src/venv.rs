//! The Python virtualenvs the xtask commands use, each created once in cargo's target
//! directory with pinned packages:
//!
//! - `xtask-venv`, from `python3`, with `xtask/requirements.txt` (the python-socketio server,
//!   the Prometheus parser, the benchmark peers);
//! - `claude-mpm-venv`, from a Python >= 3.13 found on this machine, with
//!   `tools/claude-mpm-requirements.txt` (the real claude-mpm monitor).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// The xtask venv's interpreter, creating the venv and installing the requirements if needed.
///
/// A missing `python3`, a missing venv module or a failed install is an error that says what
/// to install, never a skip.
pub(crate) fn python() -> Result<PathBuf, String> {
    let version = Command::new("python3").arg("--version").output();
    if !matches!(&version, Ok(out) if out.status.success()) {
        return Err("python3 is not installed: install it (Debian: `apt-get install python3 python3-venv`) and run again".into());
    }
    ensure(
        &crate::paths::in_target("xtask-venv")?,
        Path::new("python3"),
        &workspace_root().join("xtask/requirements.txt"),
    )
}

/// The oldest Python that claude-mpm 6.5.83 supports.
const CLAUDE_MPM_PYTHON: (u32, u32) = (3, 13);

/// The claude-mpm venv's interpreter (its `bin/` also holds the `claude-mpm` script), created
/// from a Python >= 3.13 if needed. `Ok(Err(why))` when this machine has no such Python: the
/// caller reports the check as not run, with `why`. A failed install is an error.
pub(crate) fn claude_mpm_python() -> Result<Result<PathBuf, String>, String> {
    let base = match find_python(CLAUDE_MPM_PYTHON) {
        Ok(base) => base,
        Err(why) => return Ok(Err(why)),
    };
    ensure(
        &crate::paths::in_target("claude-mpm-venv")?,
        &base,
        &workspace_root().join("tools/claude-mpm-requirements.txt"),
    )
    .map(Ok)
}

/// The venv in `venv` made from `base`, with `requirements` installed; redone when either
/// changed since the last install.
fn ensure(venv: &Path, base: &Path, requirements: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.stamp");
    let wanted = format!(
        "base interpreter: {}\n{}",
        base.display(),
        requirements_text(requirements)?
    );
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!(
            "xtask: creating the Python virtualenv {} from {}",
            venv.display(),
            base.display()
        );
        let status = Command::new(base)
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .map_err(|e| format!("could not run {} -m venv: {e}", base.display()))?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(venv);
            return Err(format!(
                "`{} -m venv` failed: install the venv module (Debian: `apt-get install python3-venv`) and run again",
                base.display()
            ));
        }
    }
    eprintln!(
        "xtask: installing {} into {}",
        requirements.display(),
        venv.display()
    );
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements)
        .status()
        .map_err(|e| format!("could not run pip: {e}"))?;
    if !status.success() {
        return Err(format!(
            "pip could not install {} (is PyPI reachable?)",
            requirements.display()
        ));
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(python)
}

/// A Python of at least `minimum` with the venv module: pyenv's installed versions first
/// (the oldest that is new enough), then `python3.N` and `python3` on PATH. `Err` says what
/// was looked at.
fn find_python(minimum: (u32, u32)) -> Result<PathBuf, String> {
    let mut candidates = pyenv_pythons();
    candidates.extend(
        (minimum.1..minimum.1 + 8)
            .map(|minor| PathBuf::from(format!("python3.{minor}")))
            .chain([PathBuf::from("python3")]),
    );
    let mut seen = Vec::new();
    for candidate in candidates {
        match version_of(&candidate) {
            Ok(version) if version >= minimum => return Ok(candidate),
            Ok((major, minor)) => {
                seen.push(format!("{} is {major}.{minor}", candidate.display()));
            }
            Err(Some(why)) => seen.push(format!("{} failed: {why}", candidate.display())),
            // Not installed under that name.
            Err(None) => {}
        }
    }
    let found = if seen.is_empty() {
        "no Python with the venv module found".to_owned()
    } else {
        format!("found only {}", seen.join(", "))
    };
    Err(format!(
        "needs Python >= {}.{} (claude-mpm 6.5.83 requires it), looked in pyenv's versions and PATH: {found}",
        minimum.0, minimum.1
    ))
}

/// `$PYENV_ROOT/versions/*/bin/python3` (default root `~/.pyenv`), oldest version first.
fn pyenv_pythons() -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")));
    let Some(Ok(entries)) = root.map(|root| std::fs::read_dir(root.join("versions"))) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let number: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((number?, entry.path().join("bin/python3")))
        })
        .filter(|(_, python)| python.exists())
        .collect();
    versions.sort();
    versions.into_iter().map(|(_, python)| python).collect()
}

/// The (major, minor) version of `python`, if it runs and has the venv module. `Err(None)`
/// when there is no such program; `Err(Some(why))` when it ran and failed, so that a Python
/// that is there but unusable is named, with its error, in the "not run" reason.
fn version_of(python: &Path) -> Result<(u32, u32), Option<String>> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, venv, ensurepip; print(*sys.version_info[:2])",
        ])
        .output()
        .map_err(|_| None)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        return Err(Some(format!("{} ({last})", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(Some(format!("printed {:?}, not a version", text.trim()))),
    }
}

/// The requirements, with the files they include, as one text: the venv is up to date when
/// it was installed from exactly this.
fn requirements_text(path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut all = text.clone();
    for line in text.lines() {
        if let Some(included) = line.trim().strip_prefix("-r ") {
            let included = path.parent().unwrap_or(path).join(included.trim());
            all.push_str(&requirements_text(&included)?);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_python_is_new_enough_for_an_impossible_minimum() {
        let why = find_python((3, 99)).unwrap_err();
        assert!(why.contains("needs Python >= 3.99"), "{why}");
    }

    #[test]
    fn finds_a_python_at_least_as_new_as_asked() {
        // python3 itself is installed wherever xtask runs (its own venv needs it).
        let found = find_python((3, 0)).unwrap();
        let (major, _) = version_of(&found).unwrap();
        assert!(matches!(
            version_of(Path::new("no-such-python-here")),
            Err(None)
        ));
        assert_eq!(major, 3);
    }
}
