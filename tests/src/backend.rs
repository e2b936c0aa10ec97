//! HTTP backends the outbound-HTTP and webhook tests start: small Python (standard library) servers (`tests/backends/`,
//! the README's webhook backend) on 127.0.0.1, on a port the system picks, stopped when the test ends.

use crate::process::{ProcessGroup, SIGTERM};
use crate::{WAIT, workspace_root};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A running backend script.
pub struct Backend {
    /// Stopped (with its whole group) when dropped.
    _process: ProcessGroup,
    pub port: u16,
}

impl Backend {
    /// Starts the Python script at `script` (relative to the workspace) with `args`; it prints its port on its
    /// first line of stdout.
    pub fn start(script: &str, args: &[&str]) -> Backend {
        Backend::start_with_env(script, args, &[])
    }

    /// Like [`Backend::start`], with `env` added to the script's environment.
    pub fn start_with_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Backend {
        let path = workspace_root().join(script);
        let mut process = ProcessGroup::spawn(
            Command::new("python3")
                .arg(&path)
                .args(args)
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
            SIGTERM,
            &path.display().to_string(),
        );
        let stdout = process.child_mut().stdout.take().expect("piped stdout");
        // Read the port on a thread, so a script that never prints cannot hang the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        let Ok(port) = line.trim().parse() else {
            let status = process.child_mut().try_wait();
            panic!(
                "{} did not print its port (got {line:?}; {status:?})",
                path.display()
            );
        };
        Backend {
            _process: process,
            port,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
