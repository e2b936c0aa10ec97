//! The plugin runtime without sockets: a real plugin (`probe`, built from source) in one instance on a worker
//! handle, driven the way a session drives it. What a trap costs and how the fresh instance catches up.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use wssgate_config::limits::Limits;
use wssgate_edge::upgrade::{Answer, RequestHead, decide};
use wssgate_hub::metrics::Metrics;
use wssgate_hub::outbound::Outbox;
use wssgate_hub::registry::ConnectionId;
use wssgate_hub::{ConnectionDetails, Hub};
use wssgate_runtime::plugin::{
    HostLinks, MessageParam, PluginInstance, PluginRuntime, RouteContext, Trapped, Verdict,
};
use wssgate_runtime::worker::Worker;

const ROUTE: &str = "/probe";

/// One probe instance on this thread's worker.
struct Bench {
    links: HostLinks,
    worker: Rc<Worker>,
    hub: Arc<Hub>,
    instance: PluginInstance,
}

impl Bench {
    fn new() -> Bench {
        let runtime = PluginRuntime::new(false, None).expect("engine");
        runtime.start_epoch_ticker();
        let template = runtime
            .load(&wssgate_tests::plugin("probe"))
            .expect("loading probe");
        let route = Arc::new(RouteContext {
            index: 0,
            path: ROUTE.into(),
            plugin: "probe.wasm".into(),
            settings: BTreeMap::new(),
            upstreams: Vec::new(),
            max_memory_bytes: 64 << 20,
            event_deadline: Duration::from_millis(500),
            fuel: None,
            restart_backoff: Duration::from_secs(60),
            fuel_metering: false,
            memory: Arc::new(wssgate_storage::Namespace {
                route: ROUTE.into(),
                history: None,
                storage: None,
            }),
        });
        let metrics = Arc::new(Metrics::new(vec![ROUTE.into()], 1));
        let (events, _due) = tokio::sync::mpsc::unbounded_channel();
        let links = HostLinks::alone(metrics.clone(), &Limits::default(), events);
        let hub = links.hub.clone();
        let worker = Worker::new(0, metrics);
        Worker::enter(&worker);
        let instance = PluginInstance::new(template, route, links.clone(), worker.clone())
            .expect("instantiating");
        Bench {
            links,
            worker,
            hub,
            instance,
        }
    }

    /// Opens a connection from `ip` with `query` and has the plugin accept it.
    fn connect(&mut self, ip: [u8; 4], query: &str) -> (ConnectionId, Rc<Outbox>) {
        let outbox = Rc::new(Outbox::new(1 << 20));
        let id = self
            .worker
            .connections
            .open(outbox.clone(), ROUTE.into(), self.instance.uid());
        let details = Arc::new(ConnectionDetails {
            route: ROUTE.into(),
            path: ROUTE.into(),
            query: query.into(),
            headers: Vec::new(),
            remote_address: format!("{}.{}.{}.{}:1000", ip[0], ip[1], ip[2], ip[3]),
            client_ip: ip.into(),
            subprotocol: None,
            connected_at_ms: 0,
            traffic: Default::default(),
        });
        self.hub.register(id, details.clone());
        self.hub.opened(id);
        assert!(matches!(
            self.instance.on_connect(id, &details),
            Ok(Verdict::Accept)
        ));
        (id, outbox)
    }

    /// Sends `text` to the plugin as connection `id`'s message; its reply, if the event did not trap.
    fn ask(&mut self, id: ConnectionId, outbox: &Outbox, text: &str) -> Result<String, Trapped> {
        self.instance.on_message(id, MessageParam::Text(text))?;
        let reply = outbox.pop().expect("the plugin answered");
        Ok(reply.into_text().unwrap().to_string())
    }
}

#[test]
fn a_trap_costs_only_its_connection_and_the_others_are_replayed_before_their_next_event() {
    let mut bench = Bench::new();
    let (a, a_out) = bench.connect([10, 0, 0, 1], "");
    let (b, b_out) = bench.connect([10, 0, 0, 2], "");
    let before = bench.instance.incarnation();
    assert!(
        bench
            .ask(b, &b_out, "info")
            .unwrap()
            .contains("restored=false")
    );

    // a's event traps: the event fails (its session closes it with 1011), the plugin is replaced at once.
    assert!(bench.ask(a, &a_out, "panic").is_err());
    assert_ne!(bench.instance.incarnation(), before, "a fresh incarnation");
    assert!(bench.instance.is_available());

    // b never noticed, but the fresh instance learnt of it before its next event: its on-connect was replayed.
    let info = bench.ask(b, &b_out, "info").unwrap();
    assert!(info.contains("restored=true"), "{info}");
    // The state the replay rebuilt stays (the plugin keeps the request it saw), and nothing traps again.
    assert!(
        bench
            .ask(b, &b_out, "info")
            .unwrap()
            .contains("restored=true")
    );
    assert!(b_out.take_close().is_none(), "b stays open");
}

#[test]
fn a_replay_that_traps_closes_that_connection_alone() {
    let mut bench = Bench::new();
    let (bad, bad_out) = bench.connect([10, 0, 0, 1], "trap-on-restore");
    let (good, good_out) = bench.connect([10, 0, 0, 2], "");
    let (trigger, trigger_out) = bench.connect([10, 0, 0, 3], "");
    assert!(bench.ask(trigger, &trigger_out, "panic").is_err());

    // The replay of `bad`'s on-connect traps before its message: the event fails and nothing else is hurt.
    assert!(bench.ask(bad, &bad_out, "info").is_err());
    // The instance no longer serves it: a late event of it reaches no plugin.
    assert!(
        bench
            .instance
            .on_message(bad, MessageParam::Text("info"))
            .is_ok()
    );
    assert!(bad_out.pop().is_none());
    assert!(
        bench.instance.is_available(),
        "one client's trap never takes the plugin down"
    );
    let info = bench.ask(good, &good_out, "info").unwrap();
    assert!(info.contains("restored=true"), "{info}");
    assert!(good_out.take_close().is_none());
}

/// Routes of one probe route on this thread's worker, configured by `route_toml` (keys of `[[route]]`).
fn routes(bench: &Bench, route_toml: &str) -> wssgate_runtime::route::Routes {
    let plugin = wssgate_tests::plugin("probe");
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\n\n[[route]]\npath = \"{ROUTE}\"\nplugin = {:?}\n{route_toml}\n",
        plugin.display()
    );
    let config = wssgate_config::Config::parse(std::path::Path::new("test.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let runtime = PluginRuntime::new(false, None).expect("engine");
    let loaded = runtime.load(&plugin).expect("loading probe");
    let context = RouteContext::new(&config.routes[0], 0, false, loaded.language);
    let template = wssgate_runtime::route::RouteTemplate {
        config: config.routes[0].clone(),
        context: Arc::new(context),
        plugin: loaded,
    };
    let route = wssgate_runtime::route::Route::instantiate(&template, &bench.links, &bench.worker)
        .expect("instantiating");
    wssgate_runtime::route::Routes::new(vec![route])
}

/// A GET upgrade request for `path` with `headers` added to (or replacing) a valid upgrade's.
fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut all: Vec<(String, String)> = [
        ("host", "example.com"),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    .iter()
    .filter(|(name, _)| !headers.iter().any(|(n, _)| n == name))
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    all.extend(
        headers
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    RequestHead {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        headers: all,
    }
}

/// The status `decide` answers `head` with: 101 for an upgrade, 200 for the test page.
fn status(head: &RequestHead, routes: &wssgate_runtime::route::Routes) -> u16 {
    match decide(head, routes) {
        Answer::Upgrade { .. } => 101,
        Answer::Page => 200,
        Answer::Error { status, .. } => status,
    }
}

#[test]
fn the_upgrade_decision_follows_rfc_6455_and_the_routes_rules() {
    let bench = Bench::new();
    let routes = routes(
        &bench,
        "subprotocols = [\"chat.v2\", \"chat.v1\"]\nallowed_origins = [\"https://example.com\"]",
    );
    let origin = ("origin", "https://EXAMPLE.com");
    // The RFC's own example key and answer; the route's preferred subprotocol of those offered.
    match decide(
        &head(
            "GET",
            ROUTE,
            &[origin, ("sec-websocket-protocol", "chat.v1, chat.v2")],
        ),
        &routes,
    ) {
        Answer::Upgrade {
            route,
            accept_key,
            subprotocol,
            deflate,
        } => {
            assert_eq!(route.path, ROUTE);
            assert_eq!(accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            assert_eq!(subprotocol.as_deref(), Some("chat.v2"));
            assert!(deflate.is_none(), "compression is off by default");
        }
        _ => panic!("expected an upgrade"),
    }
    assert_eq!(status(&head("GET", "/nowhere", &[]), &routes), 404);
    assert_eq!(status(&head("GET", "/", &[("upgrade", "")]), &routes), 200);
    assert_eq!(status(&head("POST", ROUTE, &[origin]), &routes), 405);
    assert_eq!(
        status(&head("GET", ROUTE, &[origin, ("upgrade", "")]), &routes),
        426
    );
    assert_eq!(
        status(
            &head("GET", ROUTE, &[origin, ("sec-websocket-version", "8")]),
            &routes
        ),
        426
    );
    assert_eq!(
        status(
            &head("GET", ROUTE, &[origin, ("sec-websocket-key", "short")]),
            &routes
        ),
        400
    );
    assert_eq!(status(&head("GET", ROUTE, &[]), &routes), 403, "no origin");
    assert_eq!(
        status(
            &head("GET", ROUTE, &[("origin", "https://evil.example")]),
            &routes
        ),
        403
    );
}
