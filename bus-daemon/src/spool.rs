//! The spool: where `eventbus hook` leaves events while the daemon is unreachable, and the
//! daemon's intake that publishes them once it runs.
//!
//! One append-only NDJSON file per user (`{"type": ..., "data": ...}` per line). Writers
//! (hooks, many at once) append each event as one `write` of one complete line, under an
//! exclusive advisory lock, so lines never interleave; a writer killed mid-line leaves a torn
//! line that the next writer closes with a newline, so only that line is lost. The daemon
//! takes the file under the same lock by giving it a second name (`<spool>.taking`, a hard
//! link, so a second daemon can never overwrite one being taken) and removing the first;
//! a writer that opened the file before that notices, under the lock, that the path now
//! names another file, and opens it again. The daemon then publishes the taken file's
//! events in order and deletes it: each event is taken in once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus_core::Attached;
use serde_json::{Value, json};

use crate::ingest::{IncomingEvent, Ingest};

/// The variable that overrides the spool's path.
pub const SPOOL_VAR: &str = "CLAUDE_MPM_EVENTBUS_SPOOL";
/// How often the daemon looks for spooled events while it runs.
pub const POLL: Duration = Duration::from_secs(1);

/// Why an event could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Neither `CLAUDE_MPM_EVENTBUS_SPOOL`, `XDG_STATE_HOME` nor `HOME` gives a place for it.
    #[error("no spool path: set {SPOOL_VAR}, XDG_STATE_HOME or HOME")]
    NoPath,
    /// `CLAUDE_MPM_EVENTBUS_SPOOL` is set to something other than an absolute file path.
    #[error("{SPOOL_VAR}={0:?}: expected an absolute file path")]
    NotAbsolute(String),
    /// Other writers held the lock past the deadline.
    #[error("the spool {} stayed locked past the deadline", path.display())]
    Busy {
        /// The spool file.
        path: PathBuf,
    },
    /// The file system refused (permissions, disk full, ...).
    #[error("cannot write the spool {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// The default spool: `$XDG_STATE_HOME/eventbus/spool.ndjson`, else
/// `~/.local/state/eventbus/spool.ndjson`; `None` without either variable.
pub fn default_path() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let state = absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local").join("state")))?;
    Some(state.join("eventbus").join("spool.ndjson"))
}

/// The spool a hook writes to: `CLAUDE_MPM_EVENTBUS_SPOOL` when set (the daemon reads the
/// same variable through bus-config), else [`default_path`].
pub fn path_from_env() -> Result<PathBuf, SpoolError> {
    match std::env::var_os(SPOOL_VAR) {
        Some(raw) => {
            let path = PathBuf::from(&raw);
            if path.is_absolute() && path.file_name().is_some() {
                Ok(path)
            } else {
                Err(SpoolError::NotAbsolute(raw.to_string_lossy().into_owned()))
            }
        }
        None => default_path().ok_or(SpoolError::NoPath),
    }
}

/// Appends `line` (one serialized event, without a newline) to the spool at `path`, creating
/// it (and its directory) for this user only; waits for other writers until `deadline`.
pub fn append(path: &Path, line: &[u8], deadline: Instant) -> Result<(), SpoolError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SpoolError::Io { path, source }
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(io(dir))?;
    }
    loop {
        let mut file = open_for_append(path).map_err(io(path))?;
        lock_until(&file, path, deadline)?;
        if !still_named(&file, path).map_err(io(path))? {
            // The daemon took the file between our open and our lock: open the new one.
            if Instant::now() >= deadline {
                return Err(SpoolError::Busy {
                    path: path.to_path_buf(),
                });
            }
            continue;
        }
        let mut buf = Vec::with_capacity(line.len() + 2);
        if !ends_with_newline(&mut file).map_err(io(path))? {
            // A writer was killed mid-line: end its torn line, so that ours stays whole.
            buf.push(b'\n');
        }
        buf.extend_from_slice(line);
        buf.push(b'\n');
        return file.write_all(&buf).map_err(io(path));
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn open_for_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn lock_until(file: &File, path: &Path, deadline: Instant) -> Result<(), SpoolError> {
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(SpoolError::Busy {
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(SpoolError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// True when `path` still names the file `file` has open.
fn still_named(file: &File, path: &Path) -> std::io::Result<bool> {
    let open = file.metadata()?;
    let named = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(open.dev() == named.dev() && open.ino() == named.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (open, named);
        Ok(true)
    }
}

fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// The daemon's side: takes spooled events in at startup and every [`POLL`], and reports
/// what it took under the `spool` key of `GET /stats`.
#[derive(Debug)]
pub struct Intake {
    path: Option<PathBuf>,
    ingest: Ingest,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    taken: u64,
    torn: u64,
    last_error: Option<String>,
}

impl Intake {
    /// Starts taking in the spool at `configured` (else [`default_path`]) on the current tokio
    /// runtime, publishing through `ingest`.
    pub fn start(ingest: &Ingest, configured: Option<&Path>) -> Arc<Intake> {
        let path = configured.map(Path::to_path_buf).or_else(default_path);
        if path.is_none() {
            tracing::warn!(
                "no spool path ({SPOOL_VAR}, XDG_STATE_HOME and HOME are unset): events hooks spool elsewhere are not taken in"
            );
        }
        let intake = Arc::new(Intake {
            path,
            ingest: ingest.clone(),
            counts: Mutex::default(),
        });
        let worker = intake.clone();
        tokio::spawn(async move {
            if worker.path.is_none() {
                return;
            }
            loop {
                let round = worker.clone();
                let _ = tokio::task::spawn_blocking(move || round.take_in()).await;
                tokio::time::sleep(POLL).await;
            }
        });
        intake
    }

    /// `consumers` with this intake added, so that `GET /stats` shows its figures.
    pub fn with(self: &Arc<Self>, mut consumers: Vec<Arc<dyn Attached>>) -> Vec<Arc<dyn Attached>> {
        consumers.push(self.clone());
        consumers
    }

    /// One round: what an earlier round left, then whatever hooks spooled since.
    fn take_in(&self) {
        let Some(path) = &self.path else { return };
        if !self.ingest.bus().is_enabled() {
            return; // Published now, they would be refused; they wait in the spool.
        }
        let result = take_file(path).and_then(|taken| match taken {
            Some((file, taking)) => self.publish_taken(file, &taking),
            None => Ok(()),
        });
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => counts.last_error = None,
            Err(e) => {
                let message = format!("{}: {e}", path.display());
                if counts.last_error.as_deref() != Some(&message) {
                    tracing::warn!("cannot take in the spool {message}");
                }
                counts.last_error = Some(message);
            }
        }
    }

    /// Publishes the taken file's events in order, then deletes it; events the bus refused
    /// (it shut down or was disabled meanwhile) stay in it for a later round.
    fn publish_taken(&self, mut file: File, taking: &Path) -> std::io::Result<()> {
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut text)?;
        let parsed = parse_spool(&text);
        for (line_no, reason) in &parsed.torn {
            tracing::warn!(
                "spool {}: line {line_no} skipped (torn or invalid: {reason})",
                taking.display()
            );
        }
        let lines = parsed.lines;
        // A round runs on a blocking thread: wait here for the log's commit, as POST does.
        let reply = tokio::runtime::Handle::current()
            .block_on(self.ingest.ingest(parsed.events))
            .map_err(std::io::Error::other)?;
        // A bus refuses from the moment it shuts down (or is disabled) on: the refused
        // events are the batch's last ones.
        let kept = &lines[lines.len() - reply.refused..];
        if kept.is_empty() {
            std::fs::remove_file(taking)?;
        } else {
            let rest = taking.with_extension("taking.rest");
            let mut body = Vec::new();
            for line in kept {
                body.extend_from_slice(line);
                body.push(b'\n');
            }
            std::fs::write(&rest, body)?;
            std::fs::rename(&rest, taking)?;
        }
        let taken = lines.len() - kept.len();
        if taken > 0 || !parsed.torn.is_empty() {
            tracing::info!(
                "took in {taken} spooled events from {} ({} torn lines skipped)",
                taking.display(),
                parsed.torn.len()
            );
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.taken += taken as u64;
        counts.torn += parsed.torn.len() as u64;
        Ok(())
    }
}

impl Attached for Intake {
    fn describe(&self) -> String {
        match &self.path {
            Some(path) => format!("spool intake ({})", path.display()),
            None => "spool intake (no path)".to_owned(),
        }
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        Some((
            "spool",
            json!({
                "path": self.path.as_ref().map(|p| p.display().to_string()),
                "taken": counts.taken,
                "torn": counts.torn,
                "error": counts.last_error,
            }),
        ))
    }
}

/// `<spool>.taking`: the name a file being taken in goes by.
fn taking_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".taking");
    path.with_file_name(name)
}

/// The file to publish next, locked: one an earlier round left, else the spool itself,
/// renamed aside. `None` when there is nothing to take, or another daemon is taking it.
fn take_file(path: &Path) -> std::io::Result<Option<(File, PathBuf)>> {
    let taking = taking_path(path);
    match OpenOptions::new().read(true).write(true).open(&taking) {
        Ok(file) => {
            return match file.try_lock() {
                Ok(()) => Ok(Some((file, taking))),
                Err(TryLockError::WouldBlock) => Ok(None),
                Err(TryLockError::Error(e)) => Err(e),
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    file.lock()?; // Writers hold it for one `write` each.
    if !still_named(&file, path)? || file.metadata()?.len() == 0 {
        return Ok(None);
    }
    // A link, not a rename: it fails instead of replacing a `.taking` another daemon made.
    match std::fs::hard_link(path, &taking) {
        Ok(()) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(_) => std::fs::rename(path, &taking)?, // file systems without hard links
    }
    Ok(Some((file, taking)))
}

/// A spool file's events and their lines, and the lines that are not events.
struct Parsed<'a> {
    events: Vec<IncomingEvent>,
    lines: Vec<&'a [u8]>,
    /// Line number and why.
    torn: Vec<(usize, String)>,
}

fn parse_spool(text: &[u8]) -> Parsed<'_> {
    let mut parsed = Parsed {
        events: Vec::new(),
        lines: Vec::new(),
        torn: Vec::new(),
    };
    for (index, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event = serde_json::from_slice::<IncomingEvent>(line)
            .map_err(|e| e.to_string())
            .and_then(|event| event.check().map(|()| event));
        match event {
            Ok(event) => {
                parsed.events.push(event);
                parsed.lines.push(line);
            }
            Err(reason) => parsed.torn.push((index + 1, reason)),
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_is_closed_by_the_next_writer_and_skipped() {
        let dir = std::env::temp_dir().join(format!("eventbus-spool-unit-{}", std::process::id()));
        let path = dir.join("spool.ndjson");
        let _ = std::fs::remove_dir_all(&dir);
        let deadline = Instant::now() + Duration::from_secs(5);
        append(&path, br#"{"type":"a","data":1}"#, deadline).unwrap();
        // A writer killed mid-line.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"type":"b","da"#)
            .unwrap();
        append(&path, br#"{"type":"c","data":3}"#, deadline).unwrap();
        let text = std::fs::read(&path).unwrap();
        let parsed = parse_spool(&text);
        let types: Vec<_> = parsed
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(types, ["a", "c"]);
        assert_eq!(parsed.torn.len(), 1);
        assert_eq!(parsed.torn[0].0, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn taking_renames_the_spool_aside_under_the_lock() {
        let dir = std::env::temp_dir().join(format!("eventbus-spool-take-{}", std::process::id()));
        let path = dir.join("spool.ndjson");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(take_file(&path).unwrap().is_none());
        append(
            &path,
            br#"{"type":"a"}"#,
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        let (_file, taking) = take_file(&path).unwrap().expect("a file to take");
        assert!(!path.exists());
        assert_eq!(std::fs::read(&taking).unwrap(), b"{\"type\":\"a\"}\n");
        // Held by this round: another taker leaves it alone.
        assert!(take_file(&path).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
