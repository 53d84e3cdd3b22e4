//! The Python virtualenv the xtask commands use: created once under `target/`, with the
//! pinned packages of `xtask/requirements.txt`.

use std::path::PathBuf;
use std::process::Command;

use crate::workspace_root;

/// The venv's interpreter, creating the venv and installing the requirements if needed.
///
/// A missing `python3`, a missing venv module or a failed install is an error that says what
/// to install, never a skip.
pub(crate) fn python() -> Result<PathBuf, String> {
    let root = workspace_root();
    let venv = root.join("target/xtask-venv");
    let python = venv.join("bin/python");
    let requirements = root.join("xtask/requirements.txt");
    let stamp = venv.join("requirements.stamp");
    let wanted = requirements_text(&requirements)?;
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    let version = Command::new("python3").arg("--version").output();
    if !matches!(&version, Ok(out) if out.status.success()) {
        return Err("python3 is not installed: install it (Debian: `apt-get install python3 python3-venv`) and run again".into());
    }
    if !python.exists() {
        eprintln!(
            "xtask: creating the Python virtualenv in {}",
            venv.display()
        );
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| format!("could not run python3 -m venv: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&venv);
            return Err("`python3 -m venv` failed: install the venv module (Debian: `apt-get install python3-venv`) and run again".into());
        }
    }
    eprintln!(
        "xtask: installing {} into the virtualenv",
        requirements.display()
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
        .arg(&requirements)
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

/// The requirements, with the files they include, as one text: the venv is up to date when
/// it was installed from exactly this.
fn requirements_text(path: &std::path::Path) -> Result<String, String> {
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
