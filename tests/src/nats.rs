//! Debian's `nats-server`, started by the cluster tests on 127.0.0.1, stopped when dropped. It picks its own free
//! ports (`-1`) and says which in its log, so tests running in parallel never race for one; or it takes a given
//! client port, to bring "the same" broker back.

use crate::process::{ProcessGroup, SIGTERM};
use crate::{WAIT, require_tool};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A running nats-server.
pub struct Nats {
    _process: ProcessGroup,
    pub port: u16,
    /// The monitoring endpoint (`/connz`, `/subsz`).
    pub monitor: u16,
}

impl Nats {
    /// A broker on ports of its choosing, with its defaults otherwise (`max_payload` 1 MiB).
    pub fn start() -> Nats {
        Nats::start_with(None, &[])
    }

    /// A broker on client port `port`.
    pub fn start_on(port: u16) -> Nats {
        Nats::start_with(Some(port), &[])
    }

    /// A broker on client port `port` (or one of its choosing) with `extra` command-line options (TLS,
    /// authentication).
    pub fn start_with(port: Option<u16>, extra: &[&str]) -> Nats {
        require_tool(
            "nats-server",
            Path::new(NATS_SERVER),
            "apt-get install nats-server",
        );
        let port_arg = port.map_or("-1".to_owned(), |p| p.to_string());
        let mut process = ProcessGroup::spawn(
            Command::new(NATS_SERVER)
                .args(["-a", "127.0.0.1", "-p", &port_arg, "-m", "-1"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            SIGTERM,
            "nats-server",
        );
        let log = process
            .child_mut()
            .stderr
            .take()
            .expect("nats-server's log");
        // Its log, read on a thread of its own (and drained to the end, so the server never blocks on it).
        let (lines, heard) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(log).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let (mut client, mut monitor) = (None, None);
        let mut seen = Vec::new();
        // Bounded: by WAIT, and by the server's log ending.
        while client.is_none() || monitor.is_none() {
            let line = heard
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("nats-server did not start: {seen:#?}"));
            let port_after = |marker: &str| {
                line.split(marker)
                    .nth(1)
                    .and_then(|rest| rest.trim().rsplit(':').next()?.parse::<u16>().ok())
            };
            client = client.or(port_after("Listening for client connections on "));
            monitor = monitor.or(port_after("Starting http monitor on "));
            seen.push(line);
        }
        Nats {
            _process: process,
            port: client.unwrap(),
            monitor: monitor.unwrap(),
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}
