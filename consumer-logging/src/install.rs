//! Installing a `tracing-subscriber` formatter for binaries.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::LoggingError;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, with the event fields under `"fields"`.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = LoggingError;

    /// Accepts `text` or `json` (any case, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(LoggingError::UnknownFormat(s.to_owned())),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The most verbose level written: `DEBUG` when `debug`, else `INFO`.
pub fn max_level(debug: bool) -> LevelFilter {
    if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    }
}

/// A formatter writing to `writer` at [`max_level`]`(debug)` in `format`, without colours;
/// for tests and for programs that route logs somewhere other than stderr.
pub fn formatter<W>(
    format: LogFormat,
    debug: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    build(format, debug, writer, false)
}

fn build<W>(
    format: LogFormat,
    debug: bool,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_max_level(max_level(debug))
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// Installs the process-wide `tracing` formatter of a binary: `format` lines to stderr
/// (coloured text only when stderr is a terminal), `DEBUG` and above when `debug`, else `INFO`.
///
/// Fails with [`LoggingError::AlreadyInstalled`] when a global subscriber is already set.
pub fn install_tracing(format: LogFormat, debug: bool) -> Result<(), LoggingError> {
    let ansi = std::io::stderr().is_terminal();
    let subscriber = build(format, debug, std::io::stderr, ansi);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| LoggingError::AlreadyInstalled(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_name_the_culprit() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!(" Text ".parse::<LogFormat>().unwrap(), LogFormat::Text);
        let err = "yaml".parse::<LogFormat>().unwrap_err().to_string();
        assert!(err.contains("\"yaml\""), "{err}");
    }

    #[test]
    fn debug_raises_the_level() {
        assert_eq!(max_level(true), LevelFilter::DEBUG);
        assert_eq!(max_level(false), LevelFilter::INFO);
    }
}
