//! Event priorities: `high`, `normal` (the default) and `low`, per event or by event-type rule.
//!
//! A consumer's queue hands its worker the waiting event of the highest priority next, with a
//! guaranteed share for the lower ones (see [`LOWER_SHARE`]); a full `DropNewest`/`DropOldest`
//! queue gives up the lowest priority first. Within one priority the order is the queue's
//! ordinary first-in first-out order.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{BusError, Event, Pattern};

/// One in this many events a worker takes goes to a waiting lower priority, so a sustained
/// flood of high events never starves the rest: each waiting lane below the one being served
/// gets at least one event in every `LOWER_SHARE`.
pub const LOWER_SHARE: u32 = 8;

/// How urgently a consumer should handle an event, relative to the other events in its queue.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Handled after everything of higher priority, except for its guaranteed share.
    Low,
    /// The default: the priority of every event no rule or publisher says otherwise about.
    #[default]
    Normal,
    /// Handled before the normal and low events waiting in the same queue.
    High,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Normal, Priority::High];

    /// The name used in variables, JSON and stats: `high`, `normal` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = BusError;

    /// Parses `high`, `normal` or `low` (any case, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "high" => Ok(Priority::High),
            "normal" => Ok(Priority::Normal),
            "low" => Ok(Priority::Low),
            _ => Err(BusError::InvalidPriority {
                text: s.to_owned(),
                reason: "a priority is `high`, `normal` or `low`".into(),
            }),
        }
    }
}

/// Event-type rules that give events their priority in a queue, such as
/// `hook.error*=high,hook.pre_tool=low`. The first matching rule wins; an event no rule matches
/// is `normal`. A priority the publisher set on the event itself ([`Event::with_priority`])
/// wins over every rule.
///
/// ```
/// use bus_core::{Event, Priority, PriorityRules};
/// use serde_json::json;
///
/// let rules: PriorityRules = "hook.error*=high, hook.pre_tool=low".parse()?;
/// let pre_tool = Event::new(1, "hook.pre_tool", json!({}));
/// assert_eq!(rules.priority_of(&pre_tool), Priority::Low);
/// assert_eq!(rules.priority_of(&pre_tool.with_priority(Priority::High)), Priority::High);
/// assert_eq!(rules.priority_of(&Event::new(2, "hook.stop", json!({}))), Priority::Normal);
/// assert_eq!(rules.to_string(), "hook.error*=high,hook.pre_tool=low");
/// # Ok::<(), bus_core::BusError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct PriorityRules {
    rules: Arc<[(Pattern, Priority)]>,
}

impl PriorityRules {
    /// Rules from `(pattern, priority)` pairs, in order of precedence.
    pub fn new<I, S>(rules: I) -> Result<Self, BusError>
    where
        I: IntoIterator<Item = (S, Priority)>,
        S: AsRef<str>,
    {
        let rules = rules
            .into_iter()
            .map(|(p, prio)| Ok((Pattern::new(p.as_ref())?, prio)))
            .collect::<Result<Vec<_>, BusError>>()?;
        Ok(PriorityRules {
            rules: rules.into(),
        })
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules, in order of precedence.
    pub fn rules(&self) -> impl Iterator<Item = (&str, Priority)> {
        self.rules.iter().map(|(p, prio)| (p.as_str(), *prio))
    }

    /// The priority `event` has under these rules: its own if the publisher set one, else the
    /// first matching rule's, else `normal`.
    pub fn priority_of(&self, event: &Event) -> Priority {
        event
            .priority()
            .unwrap_or_else(|| self.priority_of_type(event.event_type()))
    }

    /// The priority of an event of `event_type` whose publisher gave none.
    pub fn priority_of_type(&self, event_type: &str) -> Priority {
        self.rules
            .iter()
            .find(|(p, _)| p.matches(event_type))
            .map_or(Priority::Normal, |(_, prio)| *prio)
    }
}

impl PartialEq for PriorityRules {
    fn eq(&self, other: &Self) -> bool {
        self.rules().eq(other.rules())
    }
}

impl Eq for PriorityRules {}

impl fmt::Display for PriorityRules {
    /// The rules in the form [`FromStr`] reads: `pattern=priority` joined by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (pattern, prio)) in self.rules().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{pattern}={prio}")?;
        }
        Ok(())
    }
}

impl FromStr for PriorityRules {
    type Err = BusError;

    /// Parses `pattern=priority` pairs separated by commas (spaces around each part ignored;
    /// an empty text is no rules).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rules = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((pattern, prio)) = part.rsplit_once('=') else {
                return Err(BusError::InvalidPriority {
                    text: part.to_owned(),
                    reason: "each rule is `pattern=high|normal|low`".into(),
                });
            };
            let prio = prio
                .parse::<Priority>()
                .map_err(|_| BusError::InvalidPriority {
                    text: part.to_owned(),
                    reason: format!("`{}` is not `high`, `normal` or `low`", prio.trim()),
                })?;
            rules.push((pattern.trim().to_owned(), prio));
        }
        PriorityRules::new(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_refuses_clearly() {
        let rules: PriorityRules = "hook.error*=high,hook.subagent_stop=high,hook.pre_tool=low"
            .parse()
            .unwrap();
        assert_eq!(rules.rules().count(), 3);
        let e = |t: &str| Event::new(1, t, json!(null));
        assert_eq!(rules.priority_of(&e("hook.error.tool")), Priority::High);
        assert_eq!(rules.priority_of(&e("hook.pre_tool")), Priority::Low);
        assert_eq!(rules.priority_of(&e("other")), Priority::Normal);
        assert!("".parse::<PriorityRules>().unwrap().is_empty());
        let bad = "a=urgent".parse::<PriorityRules>().unwrap_err().to_string();
        assert!(bad.contains("a=urgent") && bad.contains("urgent"), "{bad}");
        assert!("nopriority".parse::<PriorityRules>().is_err());
        assert!(" =high".parse::<PriorityRules>().is_err(), "empty pattern");
    }

    #[test]
    fn ordering_is_low_normal_high() {
        assert!(Priority::Low < Priority::Normal && Priority::Normal < Priority::High);
        assert_eq!("HIGH".parse::<Priority>().unwrap(), Priority::High);
        assert_eq!(serde_json::to_value(Priority::Low).unwrap(), "low");
    }
}
