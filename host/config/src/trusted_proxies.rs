//! The proxies whose word about a client's address is believed, and which word that is: a listener with trusted
//! proxies names the one source it reads the client's address from (`client_address`: the PROXY protocol header,
//! `X-Forwarded-For` or `X-Real-IP`), so that a header the proxy passes through untouched is never taken for one it
//! wrote. The edge's `proxy` module reads them.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

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
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&nets.join(", "))
    }
}

/// Where a listener with trusted proxies reads the client's address (`client_address`). Exactly one source: a
/// proxy overwrites or appends the header it is configured to write and passes every other one through as the
/// client sent it, so reading a second header would believe the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAddress {
    /// `X-Forwarded-For`, walked from the right over trusted proxies: the first hop that is not one is the client.
    /// For proxies that append to it (nginx's `$proxy_add_x_forwarded_for`, AWS ALB, Google Cloud load balancers,
    /// HAProxy `option forwardfor`, Apache `mod_proxy`, Caddy, Traefik).
    XForwardedFor,
    /// `X-Real-IP`, which the proxy must set on every request, replacing the client's (nginx's
    /// `proxy_set_header X-Real-IP $remote_addr`, Apache's `RequestHeader set X-Real-IP`).
    XRealIp,
    /// The PROXY protocol (v1 or v2) header that opens every connection; no request header is believed.
    ProxyProtocol,
}

impl ClientAddress {
    /// As the config spells it.
    pub fn name(self) -> &'static str {
        match self {
            ClientAddress::XForwardedFor => "x-forwarded-for",
            ClientAddress::XRealIp => "x-real-ip",
            ClientAddress::ProxyProtocol => "proxy-protocol",
        }
    }

    /// How `check` says where a listener's client addresses come from.
    pub fn describe(self) -> &'static str {
        match self {
            ClientAddress::XForwardedFor => {
                "the right-most X-Forwarded-For entry that is not a trusted proxy"
            }
            ClientAddress::XRealIp => "X-Real-IP",
            ClientAddress::ProxyProtocol => "the PROXY protocol header",
        }
    }
}
