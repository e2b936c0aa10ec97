//! What the benchmarks read about a server process from `/proc`: CPU time and memory. Reading them from outside
//! keeps the servers free of measuring code, so the baseline and the gateway are measured the same way.

use anyhow::{Context, Result};

/// What the scheduler says of a process so far, summed over its threads (`/proc/PID/task/*/schedstat`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scheduled {
    /// Nanoseconds on a CPU.
    pub cpu_ns: u64,
    /// Nanoseconds ready to run but waiting for a CPU: what other programs took from the process.
    pub waiting_ns: u64,
}

pub fn scheduled(pid: u32) -> Result<Scheduled> {
    let mut total = Scheduled::default();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("reading /proc/{pid}/task"))?;
    for task in tasks {
        // A thread that ended between the listing and the read has no file any more; its time is gone with it.
        let stat = std::fs::read_to_string(task?.path().join("schedstat")).unwrap_or_default();
        let mut fields = stat
            .split_whitespace()
            .map(|n| n.parse::<u64>().unwrap_or(0));
        total.cpu_ns += fields.next().unwrap_or(0);
        total.waiting_ns += fields.next().unwrap_or(0);
    }
    Ok(total)
}

/// Memory of a process, in KiB, from `/proc/PID/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// The highest resident set size so far (`VmHWM`).
    pub peak_rss_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Memory {
        rss_kib: field("VmRSS:"),
        peak_rss_kib: field("VmHWM:"),
    })
}
