//! The cost of one plugin event: the host hands a 3-byte text message to the `echo-ok` plugin's `on-message`, the
//! plugin calls the host's `send`, and the host queues `ok` on the connection's outbound queue — everything the
//! gateway adds per message between tungstenite's decoded frame and its write, measured without sockets. Beside
//! it, a bare call (the `chat` plugin's `on-timer` for a timer without an owner, which it returns from at once) as
//! the reference from the same run.
//!
//! Needs the release plugins: `cargo build --release --target wasm32-wasip2 -p echo-ok -p chat`, then
//! `cargo bench -p wssgate --bench dispatch`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use wssgate_config::limits::Limits;
use wssgate_hub::ConnectionDetails;
use wssgate_hub::metrics::Metrics;
use wssgate_hub::outbound::Outbox;
use wssgate_runtime::owned::{Due, DueEvent};
use wssgate_runtime::plugin::{
    HostLinks, MessageParam, PluginInstance, PluginRuntime, RouteContext, Verdict,
};
use wssgate_runtime::worker::Worker;

fn dispatch(c: &mut Criterion) {
    let wasm = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../target/wasm32-wasip2/release/{name}.wasm"));
        assert!(
            path.is_file(),
            "{} is missing: build it with `cargo build --release --target wasm32-wasip2 -p echo-ok -p chat`",
            path.display()
        );
        path
    };
    let runtime = PluginRuntime::new(false, None).expect("engine");
    runtime.start_epoch_ticker();
    let template = runtime.load(&wasm("echo_ok")).expect("loading echo-ok");
    let chat = runtime.load(&wasm("chat")).expect("loading chat");
    let route = Arc::new(RouteContext {
        index: 0,
        path: "/wss".into(),
        plugin: "echo_ok.wasm".into(),
        settings: BTreeMap::new(),
        upstreams: Vec::new(),
        max_memory_bytes: 64 << 20,
        event_deadline: Duration::from_millis(50),
        fuel: None,
        restart_backoff: Duration::from_secs(1),
        fuel_metering: false,
        memory: Arc::new(wssgate_storage::Namespace {
            route: "/wss".into(),
            history: None,
            storage: None,
        }),
    });
    let metrics = Arc::new(Metrics::new(vec!["/wss".into()], 1));
    let (events, _due) = tokio::sync::mpsc::unbounded_channel();
    let links = HostLinks::alone(metrics, &Limits::default(), events);
    let hub = links.hub.clone();
    let worker = Worker::new(0, links.metrics.clone());
    Worker::enter(&worker);
    let mut instance = PluginInstance::new(template, route.clone(), links.clone(), worker.clone())
        .expect("instantiating echo-ok");
    let mut reference =
        PluginInstance::new(chat, route, links, worker.clone()).expect("instantiating chat");
    let outbox = Rc::new(Outbox::new(1 << 20));
    let id = worker
        .connections
        .open(outbox.clone(), "/wss".into(), instance.uid());
    let details = Arc::new(ConnectionDetails {
        route: "/wss".into(),
        path: "/wss".into(),
        query: String::new(),
        headers: Vec::new(),
        remote_address: "127.0.0.1:50000".into(),
        client_ip: [127, 0, 0, 1].into(),
        subprotocol: None,
        connected_at_ms: 0,
        traffic: Default::default(),
    });
    hub.register(id, details.clone());
    hub.opened(id);
    assert!(matches!(
        instance.on_connect(id, &details),
        Ok(Verdict::Accept)
    ));
    c.bench_function("on-message with one send", |b| {
        b.iter(|| {
            instance
                .on_message(id, MessageParam::Text("tom"))
                .expect("no trap");
            outbox.pop().expect("the plugin answered")
        })
    });
    // The same-run reference: a call with no string to place in the guest and no host call back, so the difference
    // to the line above is what the message and the reply cost.
    c.bench_function("on-timer, a bare call", |b| {
        let incarnation = reference.incarnation();
        b.iter(|| {
            let due = Due {
                generation: 0,
                route_index: 0,
                instance_index: 0,
                incarnation,
                owner: None,
                event: DueEvent::Timer(7),
            };
            reference.on_due(due).expect("no trap")
        })
    });
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
