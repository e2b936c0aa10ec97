//! The scenarios: what each drives, against which baseline, with what goal.

use crate::Args;

/// What a scenario's target compares.
#[derive(Clone, Copy)]
pub(crate) enum Goal {
    /// Server CPU per operation, gateway/baseline at most this.
    CpuRatioAtMost(f64),
    /// Operations per second, gateway/baseline at least this.
    RateRatioAtLeast(f64),
    /// Operations per second of server CPU, gateway/baseline at least this: for a load the client cannot push hard
    /// enough to saturate the server (a TLS handshake costs the client as much as the server), the rate either
    /// server could sustain on its core.
    CapacityRatioAtLeast(f64),
    /// Gateway KiB of resident memory per open connection at most this.
    KibPerConnectionAtMost(f64),
    /// No target: reported side by side, as server CPU µs per message (`cpu`) or messages per second.
    Reported { cpu: bool },
}

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) what: String,
    /// Arguments for loadgen, the same for both servers.
    pub(crate) load: Vec<String>,
    pub(crate) gateway_path: &'static str,
    pub(crate) baseline: Baseline,
    pub(crate) goal: Goal,
    /// How the gateway side runs: one node, or a cluster on a nats-server the run starts.
    pub(crate) nodes: Nodes,
}

/// The gateway side of a scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nodes {
    One,
    /// One node in cluster mode, connected to a nats-server, with no other node.
    Clustered,
    /// Two nodes of a cluster; loadgen spreads the connections over both.
    Two,
}

/// What the gateway is compared with.
#[derive(Clone, Copy)]
pub(crate) enum Baseline {
    /// The `baseline` reference server in this mode, naive or tuned (`baseline --tuned`).
    Stack { mode: &'static str, tuned: bool },
    /// nginx (TLS, one process) with `proxy_pass` to `hookd`, the same backend the gateway's webhook route calls,
    /// driven with loadgen's `http` mode: the reverse-proxy alternative to the webhook route.
    Nginx,
    /// The gateway itself on another route: what the scenario's route adds to it.
    Gateway { path: &'static str },
    /// Any server, started by `--baseline-command` and reached at `--baseline-path`: uWebSockets, say.
    External,
}

impl Scenario {
    /// The plugin outside the shipped ones that the scenario's gateway route needs, if any.
    /// What the scenario needs that this run was not given, if anything: an external baseline's command.
    pub(crate) fn needs_option(&self, args: &Args) -> Option<&'static str> {
        (matches!(self.baseline, Baseline::External) && args.baseline_command.is_none())
            .then_some("--baseline-command")
    }

    /// True when loadgen runs the scenario in echo mode against WebSocket servers (what the node client can do).
    pub(crate) fn is_echo(&self) -> bool {
        self.load
            .windows(2)
            .any(|w| w[0] == "--mode" && w[1] == "echo")
            && !matches!(self.baseline, Baseline::Nginx)
            && self.nodes != Nodes::Two
    }

    pub(crate) fn needs_plugin<'a>(&self, args: &'a Args) -> Option<&'a std::path::Path> {
        match self.gateway_path {
            "/echo-ts" => Some(&args.ts_echo),
            "/echo-py" => Some(&args.py_echo),
            _ => None,
        }
    }
}

impl Baseline {
    pub(crate) fn stack(mode: &'static str) -> Self {
        Baseline::Stack { mode, tuned: false }
    }

    pub(crate) fn tuned(mode: &'static str) -> Self {
        Baseline::Stack { mode, tuned: true }
    }
}

/// Loopback source addresses to spread many connections over.
pub(crate) const SOURCES: &str = "127.0.0.2-127.0.0.61";

/// loadgen's fan-out load: `members` members, 4 publishes under way.
pub(crate) fn fanout(members: usize) -> Vec<String> {
    [
        "--mode",
        "fanout",
        "--connections",
        &members.to_string(),
        "--in-flight",
        "4",
        "--sources",
        SOURCES,
    ]
    .map(String::from)
    .to_vec()
}

pub(crate) fn scenarios(args: &Args) -> Vec<Scenario> {
    let echo = |c: usize, k: usize| -> Vec<String> {
        vec![
            "--mode".into(),
            "echo".into(),
            "--connections".into(),
            c.to_string(),
            "--in-flight".into(),
            k.to_string(),
        ]
    };
    let paced = |k: usize| -> Vec<String> { [echo(100, k), vec!["--paced".into()]].concat() };
    let sources = SOURCES.to_string();
    vec![
        Scenario {
            name: "a",
            what: "100 conns x 1 in flight, 32 B".into(),
            load: echo(100, 1),
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CpuRatioAtMost(1.0),
            nodes: Nodes::One,
        },
        Scenario {
            name: "b",
            what: "100 conns x 8 in flight, 32 B".into(),
            load: echo(100, 8),
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CpuRatioAtMost(0.36),
            nodes: Nodes::One,
        },
        Scenario {
            name: "c",
            what: "1,000 conns x 1 in flight, 32 B".into(),
            load: echo(1000, 1),
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CpuRatioAtMost(0.6),
            nodes: Nodes::One,
        },
        Scenario {
            name: "d",
            what: "100 conns x 1, 4 KiB binary echo".into(),
            load: [
                echo(100, 1),
                vec!["--size".into(), "4096".into(), "--binary".into()],
            ]
            .concat(),
            gateway_path: "/echo",
            baseline: Baseline::stack("echo"),
            goal: Goal::CpuRatioAtMost(1.0),
            nodes: Nodes::One,
        },
        Scenario {
            name: "e",
            what: format!("{} idle conns, one message each", args.idle_connections),
            load: vec![
                "--mode".into(),
                "idle".into(),
                "--connections".into(),
                args.idle_connections.to_string(),
                "--sources".into(),
                sources.clone(),
                "--warmup".into(),
                "3".into(),
                "--duration".into(),
                "1".into(),
            ],
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::KibPerConnectionAtMost(16.0),
            nodes: Nodes::One,
        },
        Scenario {
            name: "f",
            what: "TLS + upgrade handshakes, 32 loops".into(),
            load: vec![
                "--mode".into(),
                "handshake".into(),
                "--connections".into(),
                "32".into(),
                "--sources".into(),
                sources.clone(),
            ],
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CapacityRatioAtLeast(0.9),
            nodes: Nodes::One,
        },
        Scenario {
            name: "g",
            what: format!("publish to {} members, 4 under way", args.members),
            load: fanout(args.members),
            gateway_path: "/fanout",
            baseline: Baseline::stack("fanout"),
            goal: Goal::RateRatioAtLeast(0.8),
            nodes: Nodes::One,
        },
        Scenario {
            name: "h",
            what: "100 conns x 1 in flight, paced, vs the tuned stack".into(),
            load: paced(1),
            gateway_path: "/wss",
            baseline: Baseline::tuned("ok"),
            goal: Goal::CpuRatioAtMost(1.05),
            nodes: Nodes::One,
        },
        Scenario {
            name: "i",
            what: "100 conns x 8 in flight, paced, vs the tuned stack".into(),
            load: paced(8),
            gateway_path: "/wss",
            baseline: Baseline::tuned("ok"),
            goal: Goal::CpuRatioAtMost(1.05),
            nodes: Nodes::One,
        },
        Scenario {
            name: "u1",
            what: "100 conns x 1 in flight, paced, vs --baseline-command".into(),
            load: paced(1),
            gateway_path: "/wss",
            baseline: Baseline::External,
            goal: Goal::CpuRatioAtMost(1.0),
            nodes: Nodes::One,
        },
        Scenario {
            name: "u8",
            what: "100 conns x 8 in flight, paced, vs --baseline-command".into(),
            load: paced(8),
            gateway_path: "/wss",
            baseline: Baseline::External,
            goal: Goal::CpuRatioAtMost(1.0),
            nodes: Nodes::One,
        },
        Scenario {
            name: "w",
            what: "100 conns x 1 in flight through plugins/webhook to a local backend, vs the same backend behind nginx proxy_pass".into(),
            load: paced(1),
            gateway_path: "/hook",
            baseline: Baseline::Nginx,
            goal: Goal::Reported { cpu: false },
            nodes: Nodes::One,
        },
        Scenario {
            name: "x",
            what: "100 conns x 1 in flight, paced: the webhook route (an outstanding HTTP request per message) vs echo-ok on the same gateway".into(),
            load: paced(1),
            gateway_path: "/hook",
            baseline: Baseline::Gateway { path: "/wss" },
            goal: Goal::Reported { cpu: true },
            nodes: Nodes::One,
        },
        Scenario {
            name: "ts",
            what: "scenario (a)'s load on the TypeScript echo plugin vs the Rust echo plugin on the same gateway".into(),
            load: echo(100, 1),
            gateway_path: "/echo-ts",
            baseline: Baseline::Gateway { path: "/echo" },
            goal: Goal::Reported { cpu: true },
            nodes: Nodes::One,
        },
        Scenario {
            name: "py",
            what: "scenario (a)'s load on the Python echo plugin vs the Rust echo plugin on the same gateway".into(),
            load: echo(100, 1),
            gateway_path: "/echo-py",
            baseline: Baseline::Gateway { path: "/echo" },
            goal: Goal::Reported { cpu: true },
            nodes: Nodes::One,
        },
        Scenario {
            name: "n",
            what: "scenario (a) with cluster mode on (a nats-server, no other node) vs the same gateway without".into(),
            load: echo(100, 1),
            gateway_path: "/wss",
            baseline: Baseline::Gateway { path: "/wss" },
            goal: Goal::CpuRatioAtMost(1.05),
            nodes: Nodes::Clustered,
        },
        Scenario {
            name: "o",
            what: format!(
                "publish to {} members, 4 under way, spread over two cluster nodes vs all on one node",
                args.members
            ),
            load: fanout(args.members),
            gateway_path: "/fanout",
            baseline: Baseline::Gateway { path: "/fanout" },
            goal: Goal::Reported { cpu: false },
            nodes: Nodes::Two,
        },
        smoke(
            "smoke",
            "10 conns x 1 in flight, 32 B, two seconds",
            &[],
            false,
        ),
        smoke(
            "smoke-paced",
            "10 conns x 1 in flight, paced, vs the tuned stack, two seconds",
            &["--paced"],
            true,
        ),
        Scenario {
            name: "smoke-external",
            what: "10 conns x 1 in flight, paced, vs --baseline-command, two seconds".into(),
            baseline: Baseline::External,
            ..smoke("smoke-external", "", &["--paced"], false)
        },
        Scenario {
            name: "smoke-webhook",
            what: "10 conns x 1 in flight through the webhook route, vs nginx proxy_pass, two seconds".into(),
            gateway_path: "/hook",
            baseline: Baseline::Nginx,
            ..smoke("smoke-webhook", "", &["--paced"], false)
        },
    ]
}

/// A two-second check that the harness works: 10 connections × 1 in flight, `extra` loadgen arguments.
pub(crate) fn smoke(name: &'static str, what: &str, extra: &[&str], tuned: bool) -> Scenario {
    let load: Vec<String> = [
        "--mode",
        "echo",
        "--connections",
        "10",
        "--in-flight",
        "1",
        "--warmup",
        "0.5",
        "--duration",
        "2",
    ]
    .iter()
    .chain(extra)
    .map(|a| (*a).to_owned())
    .collect();
    Scenario {
        name,
        what: what.into(),
        load,
        gateway_path: "/wss",
        baseline: Baseline::Stack { mode: "ok", tuned },
        goal: Goal::CpuRatioAtMost(f64::INFINITY),
        nodes: Nodes::One,
    }
}
