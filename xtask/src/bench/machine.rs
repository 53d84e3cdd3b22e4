//! What the numbers were measured on: the machine, its load, the tools' versions, the date.

use std::time::{SystemTime, UNIX_EPOCH};

use super::peers::command_output;

/// The machine and the versions, read at the start of the run.
pub(crate) struct Machine {
    /// CPU model (from /proc/cpuinfo).
    pub(crate) cpu: String,
    /// Logical cores available to this process.
    pub(crate) cores: usize,
    /// The 1, 5 and 15 minute load averages at the start (from /proc/loadavg).
    pub(crate) load_average: String,
    /// Total memory (from /proc/meminfo).
    pub(crate) memory: String,
    /// Kernel (uname -sr).
    pub(crate) kernel: String,
    /// rustc, python3 and node versions (the libraries' are reported by the peers).
    pub(crate) tools: Vec<String>,
    /// UTC date and time, ISO 8601.
    pub(crate) date: String,
}

/// Reads the machine's description.
pub(crate) fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".to_owned(), |(_, v)| v.trim().to_owned())
    };
    let version = |program: &str| {
        command_output(program, &["--version"])
            .unwrap_or_else(|_| format!("{program}: not installed"))
    };
    Machine {
        cpu: field(&cpuinfo, "model name"),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_average: load_average(),
        memory: gib(&field(&meminfo, "MemTotal")),
        kernel: command_output("uname", &["-sr"]).unwrap_or_else(|_| "unknown".into()),
        tools: vec![
            version("rustc"),
            version("python3"),
            format!("node {}", version("node")),
        ],
        date: utc_now(),
    }
}

/// The 1, 5 and 15 minute load averages (from /proc/loadavg).
pub(crate) fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `24682416 kB` as `23.5 GiB`.
fn gib(kb: &str) -> String {
    kb.trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .map_or(kb.to_owned(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        })
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }
}
