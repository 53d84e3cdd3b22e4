//! Runs a benchmark program as a child and measures its peak memory (max RSS).
//!
//! The kernel reports a child's peak RSS only in aggregate (`getrusage(RUSAGE_CHILDREN)`: the
//! largest of all children waited for), and this process also runs cargo and the compiler.
//! So each measured program runs under a fresh copy of xtask (`bench --child-peak-rss`) whose
//! only child it is; that copy prints the figure after the program's own output.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

use crate::TaskResult;
use crate::proc::Guarded;

/// The argument that turns `cargo xtask bench` into the measuring wrapper.
pub(crate) const WRAPPER_FLAG: &str = "--child-peak-rss";

/// The copy of xtask that runs as the wrapper (see [`wrapper_binary`]).
static WRAPPER_COPY: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Starts the wrapper's last line on stdout.
const REPORT_PREFIX: &str = "xtask-child-report";

/// A measured program that has exited.
pub(crate) struct Finished {
    /// Its standard output, without the wrapper's report.
    pub(crate) stdout: String,
    /// Its standard error.
    pub(crate) stderr: String,
    /// Its exit code (None: killed by a signal).
    pub(crate) code: Option<i32>,
    /// Its peak resident set size, in KiB.
    pub(crate) peak_rss_kb: u64,
}

/// Runs `program args` with `envs` and waits up to `timeout` for it.
pub(crate) fn run_measured(
    program: &Path,
    args: &[String],
    envs: &[(&str, String)],
    timeout: Duration,
) -> Result<Finished, String> {
    let mut command = Command::new(wrapper_binary()?);
    command
        .arg("bench")
        .arg(WRAPPER_FLAG)
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    let mut child = Guarded::spawn(&name, command)?;
    let stdout = drain(child.child_mut().stdout.take());
    let stderr = drain(child.child_mut().stderr.take());
    child.wait_exit(timeout)?;
    let (stdout, stderr) = (join(stdout), join(stderr));
    let (output, report) = stdout
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", stdout.trim_end()));
    let fields: Vec<&str> = report.split_whitespace().collect();
    let [REPORT_PREFIX, rss, code] = fields[..] else {
        return Err(format!(
            "{name} under the RSS wrapper did not report (stderr: {})",
            stderr.trim()
        ));
    };
    Ok(Finished {
        stdout: output.to_owned(),
        stderr,
        code: code.parse().ok(),
        peak_rss_kb: rss.parse().map_err(|e| format!("bad RSS {rss:?}: {e}"))?,
    })
}

/// A private copy of this xtask binary, made once per run: others building xtask in the
/// shared target directory replace its debug/xtask while a benchmark runs.
fn wrapper_binary() -> Result<PathBuf, String> {
    WRAPPER_COPY
        .get_or_init(|| {
            let dir = crate::paths::in_target("xtask-bench")?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let copy = dir.join(format!("xtask-rss-wrapper-{}", std::process::id()));
            // /proc/self/exe still reads the running binary after the file was replaced.
            std::fs::copy("/proc/self/exe", &copy)
                .map_err(|e| format!("copying xtask to {}: {e}", copy.display()))?;
            Ok(copy)
        })
        .clone()
}

/// Removes the copy made by [`wrapper_binary`], if any.
pub(crate) fn remove_wrapper_binary() {
    if let Some(Ok(copy)) = WRAPPER_COPY.get() {
        let _ = std::fs::remove_file(copy);
    }
}

/// The wrapper: runs `program args` (stdio inherited), then reports its peak RSS and exit.
pub(crate) fn wrapper(args: &[String]) -> TaskResult {
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| format!("{WRAPPER_FLAG} needs a program to run"))?;
    let mut command = Command::new(program);
    command.args(rest);
    let mut child = Guarded::spawn(program, command)?;
    let code = child.wait_exit(Duration::from_secs(24 * 3600))?;
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| format!("getrusage: {e}"))?;
    let code = code.map_or("signal".to_owned(), |c| c.to_string());
    // stdout is the measuring xtask's pipe, read after the program's own output.
    writeln!(
        std::io::stdout(),
        "\n{REPORT_PREFIX} {} {code}",
        usage.max_rss()
    )
    .map_err(|e| format!("writing the report: {e}"))
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

fn join(reader: JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}
