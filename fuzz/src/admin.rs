//! The admin listener: HTTP/1.1 (hyper, with the listener's own limits), the bearer token, the push API's JSON and
//! the query strings, on one connection's bytes.

use std::net::{IpAddr, Ipv4Addr};
use wssgate_admin::fuzzing;

/// `data[0]` is the client address's last byte, the rest what the client sent on one connection (then it closed):
/// every answer is a whole HTTP response, none a 5xx (a server error means the push API's handling broke), and a
/// request without the token gets nothing but 401, 429 or the open endpoints' answers.
pub fn admin(data: &[u8]) {
    let Some((&host, sent)) = data.split_first() else {
        return;
    };
    let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, host));
    let written = crate::block_on(fuzzing::serve(peer, sent));
    for (status, _) in crate::responses(&written) {
        assert!(status < 500, "answered {status}");
    }
    let authorized = [fuzzing::TOKEN, fuzzing::METRICS_TOKEN]
        .iter()
        .any(|token| sent.windows(token.len()).any(|w| w == token.as_bytes()));
    if !authorized {
        for (status, _) in crate::responses(&written) {
            assert!(
                matches!(status, 200 | 400 | 401 | 408 | 413 | 429 | 431 | 505)
                    && !push_answered(status, sent),
                "answered {status} without the token"
            );
        }
    }
}

/// Whether a 200 could only be the push API's (every open endpoint is a GET of `/healthz`, or of `/metrics`
/// when no metrics token is set — here one is).
fn push_answered(status: u16, sent: &[u8]) -> bool {
    status == 200 && !sent.windows(8).any(|w| w == b"/healthz")
}
