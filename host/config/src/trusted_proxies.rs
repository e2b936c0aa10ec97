//! The proxies whose word about a client's address is believed: a PROXY protocol header or `X-Real-IP` /
//! `X-Forwarded-For` headers are taken only from them (the edge's `proxy` module reads them).

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The addresses whose word about the client is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    /// Parses `127.0.0.1`, `::1` or `10.0.0.0/8`.
    pub fn parse_entry(text: &str) -> Result<IpNet, String> {
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("`{text}` is not an IP address or network"))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address given the request `headers` (names in lower case) that reached the gateway from
    /// `peer`. `X-Real-IP` wins over `X-Forwarded-For`; in the latter, the right-most address that is not itself a
    /// trusted proxy is the client. Addresses from headers carry port 0: proxies do not report the client's port.
    pub fn client_address(&self, peer: SocketAddr, headers: &[(String, String)]) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.trim())
        };
        if let Some(ip) = header("x-real-ip").and_then(|v| v.parse::<IpAddr>().ok()) {
            return SocketAddr::new(ip, 0);
        }
        let forwarded: Vec<IpAddr> = headers
            .iter()
            .filter(|(n, _)| n == "x-forwarded-for")
            .flat_map(|(_, v)| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        match forwarded
            .iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or(forwarded.first())
        {
            Some(ip) => SocketAddr::new(*ip, 0),
            None => peer,
        }
    }
}
