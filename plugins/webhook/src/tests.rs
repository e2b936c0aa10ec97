//! The webhook on the SDK's mock host: what it sends the backend and what it does with each answer.

use super::Webhook;
use serde_json::{Value, json};
use wssgate_sdk::http::{HttpError, Response, Sent};
use wssgate_sdk::testing::{MockHost, Status};
use wssgate_sdk::{CloseFrame, Connection, Message};

fn host() -> MockHost<Webhook> {
    MockHost::new()
        .with_setting("upstream", "backend")
        .with_upstream("backend")
}

/// The one request waiting: its handle, path and JSON body.
#[track_caller]
fn only_request(host: &MockHost<Webhook>) -> (Sent, String, Value) {
    let requests = host.http_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (sent, request) = requests.into_iter().next().unwrap();
    assert_eq!(
        (request.method.as_str(), request.upstream.as_str()),
        ("POST", "backend")
    );
    (
        sent,
        request.path,
        serde_json::from_slice(&request.body).unwrap(),
    )
}

fn json_response(status: u16, body: Value) -> Response {
    Response::new(status, body.to_string())
}

/// Connects and accepts through the backend with `answer`.
fn accepted(host: &MockHost<Webhook>, answer: Value) -> Connection {
    let conn = host.connect("/hook?token=t").deferred();
    let (sent, path, body) = only_request(host);
    assert_eq!(path, "/connect");
    assert_eq!(body["connection"], conn.id().to_string());
    assert_eq!(
        (body["path"].as_str(), body["query"].as_str()),
        (Some("/hook"), Some("token=t"))
    );
    host.respond(sent, json_response(200, answer));
    assert_eq!(host.status(conn), Some(Status::Open));
    conn
}

#[test]
fn init_needs_the_upstream_setting() {
    let refused = MockHost::<Webhook>::new().init().unwrap_err();
    assert!(refused.contains("upstream"), "{refused}");
}

#[test]
fn connect_answers_accept_reject_and_fail_closed() {
    let host = host();
    let conn = accepted(
        &host,
        json!({"uid": "ann", "groups": ["lobby"], "reply": "welcome"}),
    );
    assert_eq!(host.user_of(conn).as_deref(), Some("ann"));
    assert_eq!(host.groups_of(conn), vec!["lobby"]);
    assert_eq!(host.take_sent(conn), vec![Message::from("welcome")]);

    let refused = host.connect("/hook").deferred();
    let (sent, _, _) = only_request(&host);
    host.respond(sent, Response::new(401, "bad token"));
    assert_eq!(
        host.status(refused)
            .map(|s| matches!(s, Status::Rejected(r) if r.status == 401)),
        Some(true)
    );

    for (error, status) in [
        (Err(HttpError::Timeout), 504),
        (Err(HttpError::ConnectFailed("refused".into())), 502),
        (Ok(Response::new(500, "oops")), 502),
        (Ok(Response::new(200, "not json")), 502),
    ] {
        let conn = host.connect("/hook").deferred();
        let (sent, _, _) = only_request(&host);
        match error {
            Ok(response) => host.respond(sent, response),
            Err(error) => host.fail(sent, error),
        }
        assert!(
            matches!(host.status(conn), Some(Status::Rejected(r)) if r.status == status),
            "{:?}",
            host.status(conn)
        );
    }
}

#[test]
fn messages_go_one_at_a_time_in_order_and_actions_apply() {
    let host = host();
    let conn = accepted(&host, json!({"uid": "ann"}));
    host.message(conn, "tom");
    host.message(conn, Message::Binary(vec![0, 1]));
    let (sent, path, body) = only_request(&host);
    assert_eq!(path, "/message");
    assert_eq!(
        body,
        json!({"connection": conn.id().to_string(), "uid": "ann", "text": "tom"})
    );
    host.respond(
        sent,
        json_response(200, json!({"reply": "ok", "join": ["room"]})),
    );
    assert_eq!(host.take_sent(conn), vec![Message::from("ok")]);
    assert_eq!(host.groups_of(conn), vec!["room"]);
    // The second message went only once the first was answered.
    let (sent, _, body) = only_request(&host);
    assert_eq!(body["binary"], "AAE=");
    // A bad answer applies nothing, not even its valid parts.
    host.respond(
        sent,
        json_response(200, json!({"reply": "x", "close": {"code": 1005}})),
    );
    assert!(host.take_sent(conn).is_empty());
    assert_eq!(host.status(conn), Some(Status::Open));
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("no action applied"))
    );
    // A close action closes.
    host.message(conn, "bye");
    let (sent, _, _) = only_request(&host);
    host.respond(
        sent,
        json_response(200, json!({"close": {"code": 4000, "reason": "done"}})),
    );
    assert_eq!(
        host.status(conn),
        Some(Status::Closed(CloseFrame::new(4000, "done")))
    );
    // ... and the backend hears of it, from a request no connection owns.
    let (sent, path, body) = only_request(&host);
    assert_eq!(path, "/disconnect");
    assert_eq!(
        body,
        json!({"connection": conn.id().to_string(), "uid": "ann", "code": 4000, "reason": "done"})
    );
    assert_eq!(sent.owner(), None);
}

#[test]
fn a_full_queue_closes_the_client_and_signing_adds_headers() {
    let host = host()
        .with_setting("max_queued_messages", "2")
        .with_setting("secret", "s3cret");
    let conn = host.connect("/hook").deferred();
    let (_, request) = host.http_requests().remove(0);
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert!(header("x-wssgate-signature").unwrap().starts_with("v2="));
    assert_eq!(header("x-wssgate-nonce").unwrap().len(), 32);
    assert!(
        header("x-wssgate-timestamp")
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    let (sent, _) = host.http_requests().remove(0);
    host.respond(sent, Response::new(204, ""));
    for n in 0..3 {
        host.message(conn, format!("m{n}"));
    }
    assert_eq!(host.status(conn), Some(Status::Open));
    host.message(conn, "one too many");
    assert!(matches!(host.status(conn), Some(Status::Closed(f)) if f.code == 1008));
}

#[test]
fn queued_bytes_are_capped_over_the_route_and_a_restart_says_what_it_dropped() {
    let host = host()
        .with_setting("max_queued_bytes_total", "10")
        .with_setting("max_queued_bytes", "8");
    let conn = accepted(&host, json!({}));
    host.message(conn, "12345"); // in flight at once: queues nothing
    host.message(conn, "123456"); // queued: 6 bytes
    assert_eq!(host.status(conn), Some(Status::Open), "{:?}", host.logs());
    host.message(conn, "12345"); // 11 bytes would wait
    assert!(matches!(host.status(conn), Some(Status::Closed(f)) if f.code == 1008));
    let (disconnect, path, _) = only_request(&host);
    assert_eq!(
        path, "/disconnect",
        "the /message in flight died with its connection"
    );
    host.respond(disconnect, Response::new(204, ""));

    let other = accepted(&host, json!({}));
    host.message(other, "tom"); // in flight
    host.message(other, "12345678"); // queued: 8 bytes, this connection's bound
    host.message(other, "1"); // one more would pass it
    assert!(matches!(host.status(other), Some(Status::Closed(f)) if f.code == 1008));
    let (disconnect, _, _) = host
        .http_requests()
        .into_iter()
        .map(|(s, r)| (s, r.path, ()))
        .find(|(_, path, _)| path == "/disconnect")
        .unwrap();
    host.respond(disconnect, Response::new(204, ""));
    let other = accepted(&host, json!({}));
    host.message(other, "tom");
    host.restart();
    assert_eq!(host.status(other), Some(Status::Open));
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("plugin restarted while messages waited")),
        "{:?}",
        host.logs()
    );
}

/// Connects from `ip` and accepts, while other calls may be in flight.
fn accepted_from(host: &MockHost<Webhook>, ip: &str) -> Connection {
    let mut request = wssgate_sdk::Request::new("/hook");
    request.remote_address = format!("{ip}:40000");
    let conn = host.connect_with(request).deferred();
    let (sent, _) = host
        .http_requests()
        .into_iter()
        .find(|(_, r)| {
            r.path == "/connect"
                && serde_json::from_slice::<Value>(&r.body).unwrap()["connection"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    == Some(conn.id())
        })
        .expect("its /connect was sent");
    host.respond(sent, json_response(200, json!({})));
    assert_eq!(host.status(conn), Some(Status::Open));
    conn
}

/// The `/message` call waiting whose text is `text`.
fn message_call(host: &MockHost<Webhook>, text: &str) -> Option<Sent> {
    host.http_requests()
        .into_iter()
        .find(|(_, r)| {
            r.path == "/message"
                && serde_json::from_slice::<Value>(&r.body).unwrap()["text"] == text
        })
        .map(|(sent, _)| sent)
}

#[test]
fn the_route_wide_bound_closes_the_heaviest_address_not_whoever_sends_next() {
    let host = host()
        .with_setting("max_queued_bytes_total", "10")
        .with_setting("max_queued_bytes", "8");
    // One address holds 8 bytes over two connections, 4 each.
    let spread = [
        accepted_from(&host, "10.0.0.9"),
        accepted_from(&host, "10.0.0.9"),
    ];
    for conn in spread {
        host.message(conn, "tom"); // in flight
        host.message(conn, "1234"); // waits
    }
    let light = accepted_from(&host, "10.0.0.1");
    // The route holds 8 of its 10 bytes, but a message the backend takes at once waits nowhere, whatever its size.
    host.message(light, "1234567890");
    assert_eq!(host.status(light), Some(Status::Open), "{:?}", host.logs());
    // 3 bytes that must wait would make 11: one connection of the address holding 8 is closed and its queue
    // dropped, not the sender, which would hold 3.
    host.message(light, "abc");
    assert_eq!(host.status(light), Some(Status::Open), "{:?}", host.logs());
    let closed: Vec<_> = spread
        .iter()
        .filter(|&&c| matches!(host.status(c), Some(Status::Closed(f)) if f.code == 1008))
        .collect();
    assert_eq!(closed.len(), 1, "{:?}", host.logs());
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("closed with 1 messages (4 bytes)")),
        "its dropped message is reported: {:?}",
        host.logs()
    );
    // light's waiting message goes to the backend once its call in flight is answered.
    let first = message_call(&host, "1234567890").expect("light's first message was sent");
    host.respond(first, json_response(200, json!({})));
    assert!(
        message_call(&host, "abc").is_some(),
        "{:?}",
        host.http_requests()
    );

    // 4 wait now, the spread address's other connection's. A sender whose address would hold the most is closed,
    // and nobody else: another connection of light's address with 8 to wait (light's "abc" is in flight now).
    let light_again = accepted_from(&host, "10.0.0.1");
    host.message(light_again, "x");
    host.message(light_again, "12345678");
    assert!(matches!(host.status(light_again), Some(Status::Closed(f)) if f.code == 1008));
    assert_eq!(
        spread
            .iter()
            .filter(|&&c| host.status(c) == Some(Status::Open))
            .count(),
        1,
        "{:?}",
        host.logs()
    );
    assert_eq!(host.status(light), Some(Status::Open));
}
