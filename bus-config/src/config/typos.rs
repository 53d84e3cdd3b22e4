//! Warnings for variables in our namespaces that no section knows: likely typos, with the
//! closest known name.

use crate::vars::VARS;

/// Warnings for variables in our namespaces that the daemon does not know (likely typos).
pub(crate) fn unknown_variable_warnings<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<&str> = names
        .filter(|n| {
            [
                "CLAUDE_MPM_EVENTBUS_",
                "CLAUDE_MPM_RELAY_",
                "CLAUDE_MPM_SOCKETIO_",
            ]
            .iter()
            .any(|p| n.starts_with(p))
        })
        .filter(|n| crate::vars::spec(n).is_none())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let hint = closest_known(n)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            format!("unknown variable {n} is ignored{hint}")
        })
        .collect()
}

fn closest_known(name: &str) -> Option<&'static str> {
    VARS.iter()
        .map(|v| (edit_distance(name, v.name), v.name))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
