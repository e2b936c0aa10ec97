//! Writes the seed corpora (`fuzz/corpus/<target>/`): real upgrade requests as browsers, client libraries and
//! nginx send them, PROXY headers, admin requests, cluster messages encoded by the cluster's own functions,
//! webhook answers, permessage-deflate offers and frames, and the shipped configs. Run after a format changes:
//! `cargo run -p wssgate-fuzz --bin seeds`; the files are committed, and the fuzzer adds its own beside them.

use std::path::{Path, PathBuf};
use tokio_tungstenite::tungstenite::Message;
use wssgate_cluster::fuzzing::{Announcer, Key, Piece, Sealer, encode, frames};
use wssgate_deflate::codec::Deflater;
use wssgate_fuzz::message;
use wssgate_hub::Audience;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut seeds = Seeds(root, 0);
    upgrade(&mut seeds)?;
    proxy(&mut seeds)?;
    admin(&mut seeds)?;
    cluster(&mut seeds)?;
    webhook(&mut seeds)?;
    deflate(&mut seeds)?;
    config(&mut seeds)?;
    println!("wrote {} seeds under {}", seeds.1, seeds.0.display());
    Ok(())
}

/// Where seeds go, and how many were written.
struct Seeds(PathBuf, usize);

impl Seeds {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        assert!(
            wssgate_fuzz::TARGETS.iter().any(|(t, _)| *t == target),
            "no target {target}"
        );
        let folder = self.0.join(target);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(name), bytes)?;
        self.1 += 1;
        Ok(())
    }
}

/// Upgrade requests as each client writes them (header order and case included); byte 0 is the read size.
const REQUESTS: &[(&str, &[u8])] = &[
    (
        "chromium",
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nPragma: no-cache\r\n\
         Cache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like \
         Gecko) Chrome/131.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\nOrigin: https://example.com\r\n\
         Sec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Sec-WebSocket-Protocol: chat, chat.v2\r\n\r\n",
    ),
    (
        "firefox",
        b"GET /wss?token=abc HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) \
         Gecko/20100101 Firefox/133.0\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\nSec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\n\
         Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
         Connection: keep-alive, Upgrade\r\nSec-Fetch-Dest: empty\r\nSec-Fetch-Mode: websocket\r\n\
         Sec-Fetch-Site: same-origin\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUpgrade: websocket\r\n\r\n",
    ),
    (
        "safari-15-2",
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\
         Upgrade: websocket\r\nOrigin: https://example.com\r\nSec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\
         User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
         Version/15.2 Safari/605.1.15\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ),
    (
        "python-websockets",
        b"GET /wss HTTP/1.1\r\nHost: 127.0.0.1:8282\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: 8Ja3H0mJrAGgdOqW2E1XVQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         User-Agent: Python/3.11 websockets/13.1\r\n\r\n",
    ),
    (
        "node-ws",
        b"GET /wss HTTP/1.1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: 5pBg4bUS3fR6cOl0yUTBpA==\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nHost: 127.0.0.1:8282\r\n\r\n",
    ),
    (
        "nginx",
        b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nHost: example.com\r\n\
         X-Real-IP: 203.0.113.9\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://example.com\r\n\
         Sec-WebSocket-Protocol: chat.v2\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n\r\n",
    ),
    (
        "tungstenite",
        b"GET /plain HTTP/1.1\r\nHost: 127.0.0.1:8282\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n\r\n\x81\x85\x01\x02\x03\x04ig`hn",
    ),
    ("page", b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n"),
    ("post", b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
    ("no-upgrade", b"GET /chat HTTP/1.0\r\n\n"),
    ("old-version", b"GET /wss HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n\r\n"),
    ("bare-newlines", b"\r\n\nGET /wss HTTP/1.1\nUpgrade: WebSocket\nConnection: upgrade\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n\n"),
    ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
];

fn upgrade(seeds: &mut Seeds) -> std::io::Result<()> {
    for (name, request) in REQUESTS {
        seeds.write("upgrade", name, &[&b"\0"[..], *request].concat())?;
    }
    // The same request a byte, and seven bytes, at a time.
    seeds.write(
        "upgrade",
        "chromium-trickled",
        &[&b"\x01"[..], REQUESTS[0].1].concat(),
    )?;
    seeds.write(
        "upgrade",
        "nginx-in-pieces",
        &[&b"\x07"[..], REQUESTS[5].1].concat(),
    )
}

fn proxy(seeds: &mut Seeds) -> std::io::Result<()> {
    seeds.write(
        "proxy",
        "v1-tcp4",
        b"\0PROXY TCP4 192.0.2.1 192.0.2.2 56324 443",
    )?;
    seeds.write(
        "proxy",
        "v1-tcp6",
        b"\0PROXY TCP6 2001:db8::1 2001:db8::2 56324 443",
    )?;
    seeds.write(
        "proxy",
        "v1-unknown",
        b"\0PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535",
    )?;
    let v4 = [
        0x21, 0x11, 0, 12, 192, 0, 2, 1, 192, 0, 2, 2, 0xdc, 0x04, 0x01, 0xbb,
    ];
    seeds.write("proxy", "v2-tcp4", &v4)?;
    let mut v6 = vec![0x21, 0x21, 0, 36];
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(8));
    v6.extend_from_slice(&[0xdc, 0x04, 0x01, 0xbb]);
    seeds.write("proxy", "v2-tcp6", &v6)?;
    seeds.write("proxy", "v2-local", &[0x20, 0x00, 0, 0])?;
    // An address block followed by a TLV (type 0x04, NOOP), as HAProxy and AWS add.
    let tlv = [
        0x21, 0x11, 0, 19, 10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 80, 0x04, 0, 4, 0, 0, 0, 0,
    ];
    seeds.write("proxy", "v2-tcp4-tlv", &tlv)?;
    seeds.write("proxy", "v2-unix", &[0x21, 0x31, 0, 0])?;
    seeds.write(
        "proxy",
        "xff-trusted",
        b"\x03x-forwarded-for: 6.6.6.6, 198.51.100.1, 10.0.0.7\nhost: x",
    )?;
    seeds.write(
        "proxy",
        "xff-ipv6",
        b"\x03x-forwarded-for: 203.0.113.9, [2001:db8::1]:443\nx-forwarded-for: 10.0.0.9",
    )?;
    seeds.write(
        "proxy",
        "xff-untrusted",
        b"\x02x-forwarded-for: 203.0.113.9",
    )?;
    seeds.write("proxy", "real-ip", b"\x01x-real-ip: ::ffff:192.0.2.1")?;
    seeds.write(
        "proxy",
        "real-ip-twice",
        b"\x01x-real-ip: 192.0.2.1\nx-real-ip: 192.0.2.2",
    )
}

fn admin(seeds: &mut Seeds) -> std::io::Result<()> {
    let post = |path: &str, body: &str| {
        format!(
            "\x01POST {path} HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nAuthorization: Bearer fuzz-admin-token\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let get = |target: &str, token: &str| {
        format!(
            "\x01GET {target} HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
    };
    let requests = [
        ("publish", post("/api/publish", r#"{"route":"/chat","group":"room:1","message":"hello","exclude":["42",7]}"#)),
        ("send-to-user", post("/api/send-to-user", r#"{"route":"/chat","uid":"alice","message":"hi"}"#)),
        ("broadcast-binary", post("/api/broadcast", r#"{"route":"/wss","binary":"AAECAw=="}"#)),
        ("send", post("/api/send", r#"{"route":"/chat","connection":"18446744073709551615","message":"x"}"#)),
        ("close", post("/api/close", r#"{"route":"/chat","connection":12,"code":4000,"reason":"bye"}"#)),
        ("unknown-route", post("/api/publish", r#"{"route":"/nope","group":"g","message":"m"}"#)),
        ("user-online", get("/api/user-online?route=%2Fchat&uid=al+ice%21", "fuzz-admin-token")),
        ("group-size", get("/api/group-size?route=/chat&group=room%3A1", "fuzz-admin-token")),
        ("connections", get("/api/connections?route=/chat&limit=5", "fuzz-admin-token")),
        ("status", get("/api/status", "fuzz-admin-token")),
        ("metrics", get("/metrics", "fuzz-metrics-token")),
        ("wrong-token", get("/api/status", "guess")),
        ("healthz", "\x07GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned()),
        (
            "chunked",
            "\x01POST /api/broadcast HTTP/1.1\r\nAuthorization: Bearer fuzz-admin-token\r\n\
             Transfer-Encoding: chunked\r\n\r\n11\r\n{\"route\":\"/chat\",\r\n13\r\n\"message\":\"chunks\"}\r\n0\r\n\r\n"
                .to_owned(),
        ),
    ];
    for (name, request) in &requests {
        seeds.write("admin", name, request.as_bytes())?;
    }
    // Two requests on one connection (keep-alive).
    let both = [requests[10].1.as_str(), &requests[0].1[1..]].concat();
    seeds.write("admin", "keep-alive", both.as_bytes())
}

fn cluster(seeds: &mut Seeds) -> std::io::Result<()> {
    let text = Message::text("hello, room");
    let publications = [
        (
            "group",
            encode(
                "/chat",
                &Audience::Group("room:1".into()),
                &[1 << 44 | 5],
                &text,
            ),
        ),
        (
            "user",
            encode(
                "/chat",
                &Audience::User("alice".into()),
                &[],
                &Message::binary(vec![0, 1, 2]),
            ),
        ),
        ("route", encode("/wss", &Audience::Route, &[], &text)),
        (
            "connection",
            encode("/wss", &Audience::Connection(3 << 44 | 9), &[], &text),
        ),
    ];
    for (name, publication) in &publications {
        let publication = publication.as_deref().expect("a publication encodes");
        let whole = [b"P".as_slice(), publication].concat();
        seeds.write("cluster_publication", name, &message(0, &whole))?;
    }
    // A publication larger than the broker's payload, in chunks, from two senders at once, one of them losing one.
    let big = encode(
        "/chat",
        &Audience::Group("big".into()),
        &[],
        &Message::text("x".repeat(2500)),
    )
    .expect("a publication encodes");
    let chunks: Vec<Vec<u8>> = frames(&big, 1200, 1)
        .into_iter()
        .map(|(h, d)| [h.as_slice(), d].concat())
        .collect();
    let in_order: Vec<u8> = chunks.iter().flat_map(|c| message(1, c)).collect();
    seeds.write("cluster_publication", "chunked", &in_order)?;
    let interleaved: Vec<u8> = chunks
        .iter()
        .flat_map(|c| [message(1, c), message(2, c)].concat())
        .collect();
    seeds.write("cluster_publication", "two-senders", &interleaved)?;
    let lossy: Vec<u8> = [&chunks[0], &chunks[2]]
        .iter()
        .flat_map(|c| message(0x81, c))
        .collect();
    seeds.write("cluster_publication", "lost-chunk", &lossy)?;

    let pieces = [
        Piece::Group {
            route: "/chat".into(),
            group: "room:1".into(),
            members: 3,
        },
        Piece::User {
            route: "/chat".into(),
            uid: "alice".into(),
            ids: vec![1 << 44 | 1, 1 << 44 | 2],
        },
    ];
    let mut node = Announcer {
        tag: 1,
        node: "gw-1",
        seq: 0,
    };
    let mut announcements = vec![message(1, &node.heartbeat())];
    for part in node.snapshot(1, &pieces, 1 << 20) {
        announcements.push(message(1, &part));
    }
    node.seq = 1;
    for change in node.changes(&pieces[..1], 1 << 20) {
        announcements.push(message(1, &change));
    }
    let other = Announcer {
        tag: 2,
        node: "gw-2",
        seq: 4,
    };
    announcements.push(message(2, &other.heartbeat()));
    announcements.push(message(1, &node.leaving()));
    seeds.write("cluster_presence", "sequence", &announcements.concat())?;
    // A snapshot in several parts (a small payload), and a node claiming this node's name.
    let many: Vec<Piece> = (0..12)
        .map(|i| Piece::Group {
            route: "/chat".into(),
            group: format!("room:{i}"),
            members: i + 1,
        })
        .collect();
    let parts: Vec<u8> = node
        .snapshot(2, &many, 200)
        .iter()
        .flat_map(|p| message(1, p))
        .collect();
    seeds.write("cluster_presence", "snapshot-parts", &parts)?;
    let twin = Announcer {
        tag: 3,
        node: "self",
        seq: 0,
    };
    seeds.write(
        "cluster_presence",
        "same-name",
        &message(2, &twin.heartbeat()),
    )?;

    let sealer = Sealer::new(Key::new(Some("fuzz-secret")), 1);
    for (name, subject, body) in [
        (
            "publication",
            "wssgate.x2f63686174.g.x726f6f6d",
            [b"P".as_slice(), &big[..64]].concat(),
        ),
        ("presence", "wssgate.presence", node.heartbeat()),
    ] {
        let sealed = sealer.seal(subject, &[body.as_slice()]);
        let seed = [&[subject.len() as u8][..], subject.as_bytes(), &sealed[..]].concat();
        seeds.write("cluster_envelope", name, &seed)?;
    }
    // Replay records: (tag, sequence number, time offset / 16 ms, 3 bytes of body), in and out of order and window.
    let records: Vec<u8> = [
        (1u8, 5u32, 0i32),
        (1, 6, 10),
        (1, 6, 20),
        (2, 1, -2000),
        (1, 4, 0),
        (3, 9, 1_900_000),
    ]
    .iter()
    .flat_map(|&(tag, seq, offset)| {
        [
            &[tag][..],
            &seq.to_be_bytes()[..],
            &offset.to_be_bytes()[..],
            b"abc",
        ]
        .concat()
    })
    .collect();
    seeds.write(
        "cluster_envelope",
        "replay",
        &[&[0u8][..], &records[..]].concat(),
    )
}

fn webhook(seeds: &mut Seeds) -> std::io::Result<()> {
    let answers: [(&str, u8, &str); 7] = [
        (
            "actions",
            0,
            r#"{"reply":"ok","publish":[{"group":"room","text":"hi"}],"send_to_user":[{"uid":"bob","text":"psst"}],"join":["room"],"leave":["lobby"]}"#,
        ),
        ("close", 0, r#"{"close":{"code":4001,"reason":"banned"}}"#),
        (
            "binary",
            0,
            r#"{"reply_binary":"AAEC/w==","future_action":{"x":[1,2]}}"#,
        ),
        ("empty", 0, " \r\n"),
        (
            "accepted",
            1,
            r#"{"uid":"alice","groups":["lobby","room:1"],"reply":"welcome"}"#,
        ),
        ("accepted-empty", 1, ""),
        ("not-json", 1, "<html>502 Bad Gateway</html>"),
    ];
    for (name, which, body) in answers {
        seeds.write("webhook", name, &[&[which][..], body.as_bytes()].concat())?;
    }
    Ok(())
}

fn deflate(seeds: &mut Seeds) -> std::io::Result<()> {
    let offers: [(&str, u8, &str); 8] = [
        ("chromium", 0, "permessage-deflate; client_max_window_bits"),
        ("firefox", 7, "permessage-deflate"),
        ("python", 2, "permessage-deflate; client_max_window_bits"),
        (
            "wechat",
            0,
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
        ),
        (
            "limits",
            5,
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
        ),
        (
            "quoted",
            3,
            "permessage-deflate; server_max_window_bits=\"12\", permessage-deflate",
        ),
        (
            "declined-then-ok",
            1,
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8\npermessage-deflate; client_max_window_bits=15",
        ),
        (
            "safari-ua",
            0,
            "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.3 Safari/605.1.15",
        ),
    ];
    for (name, choice, text) in offers {
        seeds.write(
            "deflate_offer",
            name,
            &[&[choice][..], text.as_bytes()].concat(),
        )?;
    }
    let mut shared = Deflater::new(1, 15, false);
    let mut own = Deflater::new(6, 10, true);
    let hello = frame(0xc1, &shared.deflate(b"hello, hello, hello"));
    seeds.write(
        "deflate_inflate",
        "text",
        &[&[0, 0][..], &hello[..]].concat(),
    )?;
    let bomb = frame(0xc2, &shared.deflate(&[0; 100_000]));
    seeds.write(
        "deflate_inflate",
        "bomb",
        &[&[0, 0][..], &bomb[..]].concat(),
    )?;
    // A context kept across messages, a compressed message in two frames with a ping between, a plain one.
    let first = frame(0xc1, &own.deflate(b"{\"type\":\"chat\",\"text\":\"one\"}"));
    let second = own.deflate(b"{\"type\":\"chat\",\"text\":\"two\"}");
    let (a, b) = second.split_at(second.len() / 2);
    let stream = [
        first,
        frame(0x41, a),
        frame(0x89, b"ping"),
        frame(0x80, b),
        frame(0x81, b"plain"),
    ]
    .concat();
    seeds.write(
        "deflate_inflate",
        "takeover-fragments",
        &[&[5, 7][..], &stream[..]].concat(),
    )
}

/// A client's frame: `b0` (FIN, RSV1, opcode) and `payload`, masked.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn config(seeds: &mut Seeds) -> std::io::Result<()> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    for entry in std::fs::read_dir(&shipped)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("config.toml");
            seeds.write("config", name, &std::fs::read(&path)?)?;
        }
    }
    let full = r#"
workers = 2
data_dir = "/var/lib/wssgate"
compile_cache = false
[[listener]]
address = "[::]:443"
tls = true
acme = { domains = ["example.com"], email = "ops@example.com" }
trusted_proxies = ["10.0.0.0/8", "::1"]
client_address = "x-forwarded-for"
[admin]
address = "127.0.0.1:9090"
token = "0123456789abcdef0123"
[limits]
max_connections = 1000
max_message_bytes = 65536
[cluster]
servers = ["nats://127.0.0.1:4222"]
node = "gw-1"
secret = "a long random string shared by the nodes"
[[upstream]]
name = "backend"
url = "http://127.0.0.1:8000"
[[route]]
path = "/hook"
plugin = "webhook.wasm"
upstreams = ["backend"]
compression = "dedicated"
compression_window_bits = 12
[route.settings]
upstream = "backend"
[route.history]
size = 100
ttl_secs = 60
"#;
    seeds.write("config", "everything.toml", full.as_bytes())
}
