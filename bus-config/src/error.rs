//! Errors of reading the configuration and wiring the consumers.

/// One bad environment value: the full variable name, the value and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarError {
    /// The full variable name, such as `CLAUDE_MPM_EVENTBUS_HISTORY_SIZE`.
    pub variable: String,
    /// The value as it was set.
    pub value: String,
    /// What the variable accepts.
    pub expected: String,
}

impl VarError {
    pub(crate) fn new(variable: impl Into<String>, value: String, expected: String) -> Self {
        VarError {
            variable: variable.into(),
            value,
            expected,
        }
    }
}

impl std::fmt::Display for VarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret even when it is malformed.
        let value = if self.variable == "CLAUDE_MPM_EVENTBUS_TOKEN" {
            "****".to_owned()
        } else {
            format!("{:?}", self.value)
        };
        write!(f, "{}={value}: expected {}", self.variable, self.expected)
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One or more variables have bad values; every one of them is listed.
    #[error("invalid configuration ({} bad variable{}):\n{}", errors.len(), if errors.len() == 1 { "" } else { "s" }, list(errors))]
    Invalid {
        /// Every bad variable, in the order of the variable table.
        errors: Vec<VarError>,
    },
    /// relay-socketio refuses one of its own built-in settings (one no variable sets): this
    /// build's relay-socketio and bus-config disagree.
    #[error(
        "the Socket.IO relay refuses its built-in `{field}` setting ({reason}); this build of eventbus is inconsistent, please report it"
    )]
    RelayBuiltIn {
        /// The `RelayConfig` field.
        field: &'static str,
        /// Why relay-socketio refused it.
        reason: String,
    },
    /// envy could not read the environment at all (not expected: every field is text).
    #[error("could not read the CLAUDE_MPM_* environment: {0}")]
    Environment(#[source] envy::Error),
}

fn list(errors: &[VarError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A consumer or the bus itself could not be set up from a valid configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up {what}: {reason}")]
pub struct WiringError {
    /// Which part failed, such as `the Socket.IO relay`.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}
