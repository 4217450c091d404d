//! Syntax of peer addresses: `host:port`, checked before anything is queued.
//!
//! Resolution happens later, at every connection attempt, so a name follows
//! DNS changes; here only the shape is checked, so that a typo fails at
//! `send` instead of in a writer task retrying forever.

use std::net::Ipv6Addr;

use gossip_core::TransportError;

/// Longest address accepted: a 253-byte DNS name, a colon and a port.
const MAX_ADDR_LEN: usize = 253 + 1 + 5;

/// Checks that `addr` is `host:port` with a port from 1 to 65535 and a host
/// that is an IPv4 address, a bracketed IPv6 address (`[::1]`) or a DNS name.
pub(crate) fn check(addr: &str) -> Result<(), String> {
    match check_shape(addr)? {
        0 => Err("port 0 cannot be reached".into()),
        _ => Ok(()),
    }
}

/// [`check`], port 0 allowed (binding to it picks a free port).
pub(crate) fn check_bind(addr: &str) -> Result<(), TransportError> {
    check_shape(addr)
        .map(drop)
        .map_err(|reason| bad(addr, reason))
}

/// Checks the shape of `host:port`; returns the port.
fn check_shape(addr: &str) -> Result<u16, String> {
    if addr.len() > MAX_ADDR_LEN {
        return Err(format!("longer than {MAX_ADDR_LEN} bytes"));
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("expected host:port".into());
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("port {port:?} is not a number from 0 to 65535"));
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let Some(ip) = inner.strip_suffix(']') else {
            return Err("unclosed '[' in IPv6 address".into());
        };
        // A zone (`fe80::1%eth0`) is allowed; the OS resolver checks it.
        let ip = ip.split_once('%').map_or(ip, |(ip, _zone)| ip);
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{ip:?} is not an IPv6 address"));
        }
        return Ok(port);
    }
    if host.contains(':') {
        return Err("an IPv6 address must be bracketed, as in [::1]:9000".into());
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !host.chars().all(name_char) {
        return Err(format!("{host:?} is neither an IP address nor a host name"));
    }
    Ok(port)
}

/// [`check`], as the error `send` returns.
pub(crate) fn check_peer(addr: &str) -> Result<(), TransportError> {
    check(addr).map_err(|reason| bad(addr, reason))
}

fn bad(addr: &str, reason: String) -> TransportError {
    TransportError::BadAddress {
        addr: addr.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::{check, check_bind};

    #[test]
    fn accepts_ipv4_ipv6_and_names() {
        for ok in [
            "127.0.0.1:9000",
            "[::1]:9000",
            "[fe80::1%eth0]:1",
            "localhost:65535",
            "node-1.cluster.example:7946",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            ":9000",
            "::1:9000",
            "[::1:9000",
            "[nope]:9000",
            "a b:9000",
            "mem:a",
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check(&format!("{}:1", "a".repeat(300))).is_err());
    }

    #[test]
    fn bind_allows_port_zero() {
        assert!(check_bind("127.0.0.1:0").is_ok());
        assert!(check_bind("[::1]:0").is_ok());
        assert!(check_bind("127.0.0.1").is_err());
    }
}
