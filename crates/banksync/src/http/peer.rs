//! Who is on the other end of the TCP connection, for the one decision that depends on it: first-run setup without
//! a setup code is allowed only from this machine. The server is started with
//! `into_make_service_with_connect_info::<SocketAddr>()` (`startup`), which puts the peer's address in every
//! request's extensions; this is the only code that reads it.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

/// Headers a reverse proxy adds. A proxy on the same host makes every peer loopback, so a request carrying any of
/// them is treated as remote whatever its TCP peer.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// True when the TCP peer is a loopback address and the request carries no proxy header. Unknown peer (a server
/// built without connect info): false.
pub(super) fn is_direct_loopback(parts: &Parts) -> bool {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let proxied = PROXY_HEADERS.iter().any(|h| parts.headers.contains_key(*h));
    peer.is_some_and(|ip| ip.to_canonical().is_loopback()) && !proxied
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(peer: Option<&str>, header: Option<&str>) -> Parts {
        let mut request = Request::builder().uri("/api/setup");
        if let Some(h) = header {
            request = request.header(h, "203.0.113.9");
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        if let Some(p) = peer {
            parts.extensions.insert(ConnectInfo(p.parse::<SocketAddr>().unwrap()));
        }
        parts
    }

    #[test]
    fn only_a_direct_loopback_peer_counts_as_local() {
        assert!(is_direct_loopback(&parts(Some("127.0.0.1:5000"), None)));
        assert!(is_direct_loopback(&parts(Some("[::1]:5000"), None)));
        assert!(is_direct_loopback(&parts(Some("[::ffff:127.0.0.1]:5000"), None)));
        assert!(!is_direct_loopback(&parts(Some("192.168.1.20:5000"), None)));
        assert!(!is_direct_loopback(&parts(None, None)), "unknown peer");
        for header in PROXY_HEADERS {
            assert!(!is_direct_loopback(&parts(Some("127.0.0.1:5000"), Some(header))), "{header}");
        }
    }
}
