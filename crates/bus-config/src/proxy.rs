//! Would a proxy variable catch the relay's connection? rust_socketio opens every Socket.IO
//! connection with an Engine.IO handshake over reqwest, and reqwest follows `HTTP_PROXY`,
//! `HTTPS_PROXY` and `ALL_PROXY` (minus `NO_PROXY`) even for `localhost`. A proxy elsewhere
//! cannot reach a dashboard on this machine, so the relay would fail to connect, retrying
//! forever with nothing but its failure count to show why. The daemon cannot change the
//! environment of its own process safely, so it says so at startup instead.
//!
//! The rules mirror reqwest's (hyper-util's matcher): `HTTP_PROXY` for `http://`,
//! `HTTPS_PROXY` for `https://`, else `ALL_PROXY`; of each pair the upper-case spelling wins
//! when set, and an empty value means no proxy; none at all when `REQUEST_METHOD` is set (CGI).
//! `NO_PROXY` entries are `*`, IP addresses, IP networks (`10.0.0.0/8`) and domains, which
//! also cover their subdomains.

use std::net::IpAddr;

/// The variable whose proxy reqwest would use for `url`, when one applies.
///
/// `env` looks a variable up (`std::env::var` in the daemon, a table in tests).
pub(crate) fn proxy_variable_for(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<&'static str> {
    if env("REQUEST_METHOD").is_some() {
        return None;
    }
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    // The first spelling that is set decides, even when it is empty.
    let proxy_in = |names: [&'static str; 2]| {
        let name = names.into_iter().find(|n| env(n).is_some())?;
        env(name)
            .is_some_and(|v| !v.trim().is_empty())
            .then_some(name)
    };
    let scheme_var = match url.scheme() {
        "http" => proxy_in(["HTTP_PROXY", "http_proxy"]),
        "https" => proxy_in(["HTTPS_PROXY", "https_proxy"]),
        _ => None,
    };
    let var = scheme_var.or_else(|| proxy_in(["ALL_PROXY", "all_proxy"]))?;
    let no_proxy = env("NO_PROXY")
        .or_else(|| env("no_proxy"))
        .unwrap_or_default();
    if no_proxy_covers(&no_proxy, host) {
        None
    } else {
        Some(var)
    }
}

/// The startup warning for the relay's `url`, when a proxy variable would catch it.
pub(crate) fn relay_warning(url: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let var = proxy_variable_for(url, env)?;
    let host = reqwest::Url::parse(url)
        .ok()?
        .host_str()?
        .trim_matches(['[', ']'])
        .to_owned();
    Some(format!(
        "the Socket.IO relay will reach {url} through the proxy in {var} (its HTTP client \
         follows the proxy variables, even for localhost); if the dashboard is not behind that \
         proxy, add {host} to NO_PROXY, for example NO_PROXY=localhost,127.0.0.1,::1"
    ))
}

fn no_proxy_covers(list: &str, host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    let ip = host.parse::<IpAddr>().ok();
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        if let Some(ip) = ip {
            return entry_covers_ip(entry, ip);
        }
        let domain = entry.strip_prefix('.').unwrap_or(entry);
        !domain.is_empty()
            && (host.eq_ignore_ascii_case(domain)
                || host.len() > domain.len()
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                    && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain))
    })
}

fn entry_covers_ip(entry: &str, ip: IpAddr) -> bool {
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, bits)) => match bits.parse::<u32>() {
            Ok(bits) => (addr, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            same_prefix(u32::from(net).into(), u32::from(ip).into(), 32, prefix)
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            same_prefix(u128::from(net), u128::from(ip), 128, prefix)
        }
        _ => false,
    }
}

fn same_prefix(net: u128, ip: u128, width: u32, prefix: Option<u32>) -> bool {
    let bits = prefix.unwrap_or(width);
    if bits > width {
        return false;
    }
    let shift = width - bits;
    if shift >= 128 {
        return true;
    }
    net >> shift == ip >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_scheme_picks_the_variable() {
        let p = "http://proxy:3128";
        let local = "http://localhost:8765";
        assert_eq!(proxy_variable_for(local, env(&[])), None);
        assert_eq!(
            proxy_variable_for(local, env(&[("http_proxy", p)])),
            Some("http_proxy")
        );
        assert_eq!(
            proxy_variable_for(local, env(&[("HTTP_PROXY", p), ("ALL_PROXY", p)])),
            Some("HTTP_PROXY")
        );
        assert_eq!(
            proxy_variable_for(local, env(&[("ALL_PROXY", p)])),
            Some("ALL_PROXY")
        );
        assert_eq!(proxy_variable_for(local, env(&[("HTTPS_PROXY", p)])), None);
        assert_eq!(
            proxy_variable_for("https://dash.example:443", env(&[("HTTPS_PROXY", p)])),
            Some("HTTPS_PROXY")
        );
        assert_eq!(proxy_variable_for(local, env(&[("HTTP_PROXY", "")])), None);
        assert_eq!(
            proxy_variable_for(local, env(&[("HTTP_PROXY", ""), ("http_proxy", p)])),
            None
        );
        assert_eq!(
            proxy_variable_for(local, env(&[("HTTP_PROXY", ""), ("ALL_PROXY", p)])),
            Some("ALL_PROXY")
        );
        assert_eq!(
            proxy_variable_for(local, env(&[("ALL_PROXY", p), ("REQUEST_METHOD", "GET")])),
            None
        );
    }

    #[test]
    fn no_proxy_entries_exempt_hosts() {
        let p = "http://proxy:3128";
        let caught = |url: &str, no_proxy: &str| {
            proxy_variable_for(url, env(&[("HTTP_PROXY", p), ("NO_PROXY", no_proxy)])).is_some()
        };
        assert!(!caught("http://localhost:8765", "localhost,127.0.0.1"));
        assert!(!caught("http://LOCALHOST:8765", " localhost "));
        assert!(!caught("http://127.0.0.1:8765", "localhost, 127.0.0.1"));
        assert!(!caught("http://127.0.0.1:8765", "127.0.0.0/8"));
        assert!(!caught("http://[::1]:8765", "::1"));
        assert!(!caught("http://dash.corp.example:80", ".corp.example"));
        assert!(!caught("http://dash.corp.example:80", "corp.example"));
        assert!(!caught("http://anything:80", "*"));
        assert!(caught("http://127.0.0.1:8765", "localhost"));
        assert!(caught("http://localhost:8765", "127.0.0.1"));
        assert!(caught("http://notcorp.example:80", "corp.example"));
        assert!(caught("http://10.1.2.3:80", "10.0.0.0/16"));
        assert!(caught("http://localhost:8765", ""));
        // The lower-case spelling counts when the upper-case one is unset.
        assert!(
            proxy_variable_for(
                "http://localhost:1",
                env(&[("ALL_PROXY", p), ("no_proxy", "localhost")])
            )
            .is_none()
        );
    }

    #[test]
    fn the_warning_names_the_variable_and_the_fix() {
        let w = relay_warning(
            "http://[::1]:8765",
            env(&[("ALL_PROXY", "socks5://user:pw@proxy:1080")]),
        )
        .unwrap();
        assert!(w.contains("through the proxy in ALL_PROXY"), "{w}");
        assert!(w.contains("add ::1 to NO_PROXY"), "{w}");
        assert!(
            !w.contains("user:pw"),
            "a proxy URL may hold credentials: {w}"
        );
    }
}
