//! Plugin scenarios: a script of what clients do and what they must see, written once and run both against
//! [`MockHost`] (by the plugin's unit tests) and against the real gateway (by the repository's end-to-end tests,
//! over real sockets). A scenario that passes on one and fails on the other is a difference between the mock and
//! the gateway, which is a bug.

use super::{MockHost, Status, Upgrade};
use crate::runtime::Exported;
use crate::{Connection, Message, Request};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// One script.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    /// The route's `[route.settings]`.
    pub settings: Vec<(&'static str, &'static str)>,
    /// The route's `accept_timeout_ms`.
    pub accept_timeout: Duration,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// A scenario with no settings and the default accept timeout (10 s).
    pub fn new(name: &'static str, steps: Vec<Step>) -> Self {
        Scenario {
            name,
            settings: Vec::new(),
            accept_timeout: Duration::from_secs(10),
            steps,
        }
    }
}

/// What a client does, or must see. Clients are numbered by the test; each connects once.
#[derive(Debug, Clone)]
pub enum Step {
    /// Client `client` asks to upgrade with query `query`; the answer must be `expect`. A deferred upgrade is waited
    /// for, time passing as it would in the gateway.
    Connect {
        client: usize,
        query: &'static str,
        expect: Expected,
    },
    /// The client sends a message.
    Send { client: usize, message: Message },
    /// The next message the client receives must be `message`.
    Receive { client: usize, message: Message },
    /// Time passes; timers fire.
    Wait(Duration),
    /// The client closes with `code`.
    Close { client: usize, code: u16 },
    /// The gateway must have closed the client with `code`.
    Closed { client: usize, code: u16 },
}

/// How an upgrade must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// 101: the WebSocket opens.
    Open,
    /// This HTTP status, and no WebSocket.
    Rejected(u16),
}

/// The path scenarios connect to.
pub const SCENARIO_PATH: &str = "/scenario";

impl<P: Exported> MockHost<P> {
    /// Runs `scenario` against a fresh mock of `P`, panicking at the first step that does not go as written.
    #[track_caller]
    pub fn run_scenario(scenario: &Scenario) {
        let mut host = MockHost::<P>::new().with_accept_timeout(scenario.accept_timeout);
        for (key, value) in &scenario.settings {
            host = host.with_setting(key, value);
        }
        let mut clients: BTreeMap<usize, Connection> = BTreeMap::new();
        let mut inbox: BTreeMap<usize, VecDeque<Message>> = BTreeMap::new();
        let name = scenario.name;
        for (n, step) in scenario.steps.iter().enumerate() {
            let conn = |client: &usize| {
                *clients
                    .get(client)
                    .unwrap_or_else(|| panic!("{name}, step {n}: client {client} never connected"))
            };
            match step {
                Step::Connect {
                    client,
                    query,
                    expect,
                } => {
                    let request = Request {
                        query: (*query).to_owned(),
                        ..Request::new(SCENARIO_PATH)
                    };
                    let got = match host.connect_with(request) {
                        Upgrade::Accepted(conn) => {
                            clients.insert(*client, conn);
                            Expected::Open
                        }
                        Upgrade::Rejected(r) => Expected::Rejected(r.status),
                        Upgrade::Deferred(conn) => {
                            clients.insert(*client, conn);
                            host.await_answer(conn)
                        }
                    };
                    assert_eq!(got, *expect, "{name}, step {n}: client {client}'s upgrade");
                }
                Step::Send { client, message } => host.message(conn(client), message.clone()),
                Step::Receive { client, message } => {
                    let queue = inbox.entry(*client).or_default();
                    queue.extend(host.take_sent(conn(client)));
                    assert_eq!(
                        queue.pop_front().as_ref(),
                        Some(message),
                        "{name}, step {n}: what client {client} received next"
                    );
                }
                Step::Wait(time) => host.advance(*time),
                Step::Close { client, code } => host.client_close(conn(client), *code, ""),
                Step::Closed { client, code } => {
                    let closed = host.closed(conn(client)).map(|f| f.code);
                    assert_eq!(
                        closed,
                        Some(*code),
                        "{name}, step {n}: client {client}'s close code"
                    );
                }
            }
        }
    }

    /// Lets the clock run, 1 ms at a time, until the deferred upgrade of `conn` is answered (by the plugin or the
    /// accept timeout).
    fn await_answer(&self, conn: Connection) -> Expected {
        let limit = self.state.borrow().limits.accept_timeout.as_millis() as u64 + 1;
        for _ in 0..=limit {
            match self.status(conn) {
                Some(Status::Waiting) => self.advance(Duration::from_millis(1)),
                Some(Status::Rejected(r)) => return Expected::Rejected(r.status),
                // Open, or opened and already closed again.
                _ => return Expected::Open,
            }
        }
        panic!(
            "the deferred upgrade of connection {} was never answered",
            conn.id()
        )
    }
}
