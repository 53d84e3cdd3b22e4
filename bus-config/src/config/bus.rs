//! The bus's own section: `CLAUDE_MPM_EVENTBUS_ENABLED`, `_DEBUG`, `_HISTORY_SIZE`,
//! `_HISTORY_MAX_BYTES`, `_FILTERS`, `_QUEUE_CAPACITY`, `_OVERFLOW`.

use bus_core::Overflow;
use serde::Serialize;
use serde_json::Value;

use super::reader::Reader;
use crate::runtime::MAX_HISTORY_SIZE;

/// The history's default byte budget: 64 MiB.
pub const DEFAULT_HISTORY_MAX_BYTES: u64 = 64 << 20;

/// The bus's own settings: the part of the configuration that can also be changed on a
/// running bus (see [`RuntimeSettings`](crate::RuntimeSettings)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BusSettings {
    /// `CLAUDE_MPM_EVENTBUS_ENABLED`.
    pub enabled: bool,
    /// `CLAUDE_MPM_EVENTBUS_DEBUG`.
    pub debug: bool,
    /// `CLAUDE_MPM_EVENTBUS_HISTORY_SIZE`.
    pub history_size: usize,
    /// `CLAUDE_MPM_EVENTBUS_HISTORY_MAX_BYTES` (0: by count only).
    pub history_max_bytes: usize,
    /// `CLAUDE_MPM_EVENTBUS_FILTERS`, validated patterns.
    pub filters: Vec<String>,
    /// `CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY`.
    pub queue_capacity: usize,
    /// `CLAUDE_MPM_EVENTBUS_OVERFLOW`.
    pub overflow: Overflow,
}

impl BusSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        BusSettings {
            enabled: r.flag("CLAUDE_MPM_EVENTBUS_ENABLED", true),
            debug: r.flag("CLAUDE_MPM_EVENTBUS_DEBUG", false),
            history_size: r.number("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", 100, 0, MAX_HISTORY_SIZE)
                as usize,
            history_max_bytes: r.number(
                "CLAUDE_MPM_EVENTBUS_HISTORY_MAX_BYTES",
                DEFAULT_HISTORY_MAX_BYTES,
                0,
                1 << 40,
            ) as usize,
            filters: r.patterns("CLAUDE_MPM_EVENTBUS_FILTERS", Vec::new(), false),
            queue_capacity: r.number("CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY", 10_000, 1, 10_000_000)
                as usize,
            overflow: r.value(
                "CLAUDE_MPM_EVENTBUS_OVERFLOW",
                Overflow::DropNewest,
                parse_overflow,
                |o| Value::from(overflow_name(*o)),
            ),
        }
    }
}

fn parse_overflow(s: &str) -> Result<Overflow, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "drop_newest" => Ok(Overflow::DropNewest),
        "drop_oldest" => Ok(Overflow::DropOldest),
        "block" => Ok(Overflow::Block),
        _ => Err("drop_newest, drop_oldest or block".into()),
    }
}

fn overflow_name(o: Overflow) -> &'static str {
    match o {
        Overflow::DropNewest => "drop_newest",
        Overflow::DropOldest => "drop_oldest",
        Overflow::Block => "block",
    }
}
