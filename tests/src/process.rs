//! External programs a test starts (nginx, node with Chromium, Python clients) run in a process group of their own
//! and are stopped as a whole, gracefully first, when the test ends — also when it panics. Killing only the
//! process a test spawned is not enough: nginx's workers outlive a killed master, and a browser outlives its driver.

use std::process::Child;

pub use libc::{SIGQUIT, SIGTERM};
use std::time::{Duration, Instant};

/// How long a stopped program may take to exit before its whole group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A child started with `process_group(0)` (it leads its own group), stopped with `stop_signal` when dropped.
pub struct ProcessGroup {
    child: Child,
    /// The signal the program takes as "finish and exit" (SIGQUIT for nginx's graceful shutdown, SIGTERM for most).
    stop_signal: libc::c_int,
}

impl ProcessGroup {
    /// Takes charge of `child`, which must have been spawned with `process_group(0)`.
    pub fn new(child: Child, stop_signal: libc::c_int) -> ProcessGroup {
        ProcessGroup { child, stop_signal }
    }

    /// Starts `command` as the leader of a group of its own (`process_group(0)`), stopped with `stop_signal` when
    /// dropped; fails the test, naming `what`, if it cannot start.
    pub fn spawn(
        command: &mut std::process::Command,
        stop_signal: libc::c_int,
        what: &str,
    ) -> ProcessGroup {
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        ProcessGroup::new(child, stop_signal)
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Sends `signal` to every process of the group led by `leader` (ignoring a group that is already gone).
pub fn signal_group(leader: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-(leader as libc::pid_t), signal);
    }
}

/// Stops the group led by `child`: `stop_signal`, up to [`STOP_GRACE`] for the leader to exit, then SIGKILL to
/// whatever of the group is left. Reaps the leader.
pub fn stop_group(child: &mut Child, stop_signal: libc::c_int) {
    if matches!(child.try_wait(), Ok(None)) {
        signal_group(child.id(), stop_signal);
        let deadline = Instant::now() + STOP_GRACE;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    signal_group(child.id(), libc::SIGKILL);
    let _ = child.wait();
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        stop_group(&mut self.child, self.stop_signal);
    }
}

/// Runs `command` in a group of its own and returns its output; if it has not finished within `limit`, its group
/// is stopped and the test fails. Whatever of its group is still running when it exits (a browser it launched) is
/// stopped too.
pub async fn run_bounded(command: std::process::Command, limit: Duration) -> std::process::Output {
    tokio::task::spawn_blocking(move || run_bounded_blocking(command, limit))
        .await
        .expect("the test program's runner panicked")
}

/// [`run_bounded`] for a caller that may block its thread (test setup that builds something).
pub fn run_bounded_blocking(
    mut command: std::process::Command,
    limit: Duration,
) -> std::process::Output {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let shown = format!("{command:?}");
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {shown}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for a test program") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop_group(&mut child, libc::SIGTERM);
    let output = std::process::Output {
        status: status.unwrap_or_else(|| child.wait().expect("reaping a test program")),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "{shown} did not finish within {limit:?}; it printed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Leaves process `pid` no file descriptor to open (its soft limit set to its lowest free descriptor number)
/// until dropped, which gives it its limit back: how a test makes a gateway run out of descriptors.
pub struct FdStarvation {
    pid: i32,
    soft: u64,
    hard: u64,
}

impl FdStarvation {
    pub fn start(pid: u32) -> FdStarvation {
        use rlimit::Resource;
        let pid = pid as i32;
        let (mut soft, mut hard) = (0, 0);
        rlimit::prlimit(pid, Resource::NOFILE, None, Some((&mut soft, &mut hard)))
            .expect("reading the open-files limit");
        let used: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("listing the process's descriptors")
            .filter_map(|fd| fd.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let lowest_free = (0..).find(|n| !used.contains(n)).unwrap();
        rlimit::prlimit(pid, Resource::NOFILE, Some((lowest_free, hard)), None)
            .expect("lowering the open-files limit");
        FdStarvation { pid, soft, hard }
    }
}

impl Drop for FdStarvation {
    fn drop(&mut self) {
        let _ = rlimit::prlimit(
            self.pid,
            rlimit::Resource::NOFILE,
            Some((self.soft, self.hard)),
            None,
        );
    }
}

/// Runs `program args…` (bounded to 30 s) and parses the one JSON line it prints; panics with its output unless it
/// succeeded.
pub async fn run_json_client(program: &str, args: &[String]) -> serde_json::Value {
    let mut command = std::process::Command::new(program);
    command.args(args);
    let output = run_bounded(command, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} failed: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
