//! The client's address behind trusted proxies (`server.trusted_proxies`).
//!
//! A request that arrives from a trusted proxy (nginx, a load balancer)
//! carries the client's address in `Forwarded` (RFC 7239, `for=`) or, when
//! that is absent, `X-Forwarded-For`. The hops are read from the right (the
//! nearest) to the left; trusted proxies are skipped and the first address
//! that is not one of them is the client. Everything after the request's
//! own peer — the per-IP limit, the access log, login back-off, admin audit —
//! sees that address, because the middleware replaces the connection's
//! `ConnectInfo` with it.
//!
//! Invariants:
//! - the headers are believed only when the TCP peer itself is trusted: a
//!   client that sends `X-Forwarded-For` directly is limited and logged by
//!   its own address;
//! - a hop that cannot be read (`unknown`, an obfuscated `_name`, garbage)
//!   ends the walk: the last trusted hop before it is the client, so a
//!   forged left part of the chain is never believed;
//! - with no trusted proxies configured (the default) nothing changes.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Whether `ip` is one of them (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub use crate::config::parse_proxy;

/// One hop of a forwarding header as an address, if it is one.
fn hop_address(raw: &str) -> Option<IpAddr> {
    let t = raw.trim().trim_matches('"');
    if let Some(rest) = t.strip_prefix('[') {
        // "[2001:db8::1]:4711" or "[2001:db8::1]"
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(ip);
    }
    // "192.0.2.60:8080"
    t.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// The hops named by the request, nearest last: `Forwarded`'s `for=` values
/// when the header is present, else `X-Forwarded-For`'s list. `None` stands
/// for a hop that is not an address.
fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| hop_address(v))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|h| !h.trim().is_empty())
        .map(hop_address)
        .collect()
}

/// The client's address for a request from `peer` with `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops(headers).into_iter().rev() {
        match hop {
            Some(ip) => {
                client = canonical(ip);
                if !trusted.contains(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// The middleware: replaces the connection's address by the client's when
/// the request comes through a trusted proxy.
pub async fn forwarded(State(trusted): State<Arc<TrustedProxies>>, mut req: Request, next: Next) -> Response {
    if !trusted.0.is_empty() {
        if let Some(peer) = crate::http::context::client_addr(req.extensions()) {
            let ip = client_ip(peer.ip(), req.headers(), &trusted);
            if ip != peer.ip() {
                req.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 0)));
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies(nets.iter().map(|n| parse_proxy(n).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(client_ip(ip("203.0.113.9"), &h, &t), ip("203.0.113.9"));
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &TrustedProxies::default()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged "6.6.6.6"; nginx appended the real address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &t), ip("198.51.100.7"));
        // Several header lines form one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.8"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("198.51.100.8"));
    }

    #[test]
    fn forwarded_wins_and_its_forms_are_read() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            (
                "forwarded",
                "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            ),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.60:8080;by=10.0.0.1")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("192.0.2.60"));
    }

    #[test]
    fn an_unreadable_hop_ends_the_walk() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7, garbage, 10.9.9.9")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.9.9.9"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.0.0.1"));
        // Only proxies in the chain: the farthest is the best we know.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), ip("10.0.0.5"));
    }

    #[test]
    fn mapped_addresses_and_entries() {
        let t = trusted(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &h, &t), ip("198.51.100.7"));
        assert!(parse_proxy("10.0.0.0/8").is_ok());
        assert!(parse_proxy("::1").is_ok());
        assert!(parse_proxy(" 192.168.1.1 ").is_ok());
        let e = parse_proxy("10.0.0.0/33").unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        assert!(parse_proxy("nginx").is_err());
    }
}
