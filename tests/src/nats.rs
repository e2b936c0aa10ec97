//! Debian's `nats-server`, started by the cluster tests on 127.0.0.1 (client and monitoring ports chosen at run
//! time, or a given client port to bring "the same" broker back), stopped when dropped.

use crate::pebble::free_port;
use crate::process::{ProcessGroup, SIGTERM};
use crate::{WAIT, require_tool};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A running nats-server.
pub struct Nats {
    _process: ProcessGroup,
    pub port: u16,
    /// The monitoring endpoint (`/connz`, `/subsz`).
    pub monitor: u16,
}

impl Nats {
    /// A broker on a free port.
    pub fn start() -> Nats {
        Nats::start_on(free_port())
    }

    /// A broker on client port `port`, with its defaults otherwise (`max_payload` 1 MiB).
    pub fn start_on(port: u16) -> Nats {
        Nats::start_with(port, &[])
    }

    /// A broker on client port `port` with `extra` command-line options (TLS, authentication).
    pub fn start_with(port: u16, extra: &[&str]) -> Nats {
        require_tool(
            "nats-server",
            Path::new(NATS_SERVER),
            "apt-get install nats-server",
        );
        let monitor = free_port();
        let child = Command::new(NATS_SERVER)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &monitor.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting nats-server");
        let process = ProcessGroup::new(child, SIGTERM);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nats {
            _process: process,
            port,
            monitor,
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}
