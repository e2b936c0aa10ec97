//! `wssgate status`: the running gateway at a glance, like Workerman's `php start.php status`. It asks the admin
//! listener the config names (`GET /api/status`, with the config's token): the admin listener is already the
//! gateway's authenticated control channel, reachable wherever the operator is, so no second one (a local control
//! socket) is opened. Rates are computed here from two readings a second apart.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use wssgate_config::Config;

/// How long one request to the admin listener may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to ask, and with what token.
pub struct Target {
    address: SocketAddr,
    token: String,
}

impl Target {
    /// The admin listener of `config`; an error naming the file when it has none.
    pub fn of(config: &Config) -> Result<Target> {
        let Some(admin) = &config.admin else {
            bail!(
                "{}: the admin listener is off ([admin] is not set), and `wssgate status` asks it",
                config.source.display()
            );
        };
        Ok(Target {
            address: admin.address,
            token: admin.token.clone(),
        })
    }

    /// `GET path`: the JSON answer, or one line saying why there is none.
    pub async fn get(&self, path: &str) -> Result<Value> {
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::TokioExecutor;
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = hyper::Request::get(format!("http://{}{path}", self.address))
            .header("authorization", format!("Bearer {}", self.token))
            .body(Full::new(Bytes::new()))?;
        let response = tokio::time::timeout(ASK_TIMEOUT, client.request(request))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the admin listener on {} did not answer within {ASK_TIMEOUT:?}",
                    self.address
                )
            })?
            .map_err(|_| {
                anyhow::anyhow!(
                    "no gateway answers on its admin listener {} (is it running with this config?)",
                    self.address
                )
            })?;
        let status = response.status();
        let body = tokio::time::timeout(ASK_TIMEOUT, response.into_body().collect())
            .await
            .context("reading the admin listener's answer")??
            .to_bytes();
        match status.as_u16() {
            200 => serde_json::from_slice(&body).context("the admin listener's answer is not JSON"),
            401 => bail!(
                "the admin listener on {} refused the config's [admin] token",
                self.address
            ),
            429 => bail!(
                "the admin listener on {} is throttling this address after refused tokens",
                self.address
            ),
            404 => bail!(
                "the gateway on {} has no {path} (an older version?)",
                self.address
            ),
            other => bail!("the admin listener on {} answered {other}", self.address),
        }
    }
}

/// Per-second rates between two readings of the same counters, `seconds` apart.
/// A text the gateway reported, as it is printed: a user id, a route or a remote address may be chosen by a client
/// or a plugin, so control characters are escaped (`\u{1b}`) rather than written to the operator's terminal, where
/// they could move the cursor, rewrite the screen or set the clipboard.
fn printable(text: &Value, missing: &str) -> String {
    let text = text.as_str().unwrap_or(missing);
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

fn rate(now: &Value, before: &Value, field: &str, seconds: f64) -> f64 {
    let (a, b) = (
        now[field].as_u64().unwrap_or(0),
        before[field].as_u64().unwrap_or(0),
    );
    a.saturating_sub(b) as f64 / seconds
}

fn mib(bytes: &Value) -> String {
    bytes.as_u64().map_or_else(
        || "-".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

/// The status and the rates since `before`, as the table `wssgate status` prints.
pub fn table(now: &Value, before: &Value, seconds: f64) -> String {
    let mut out = String::new();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let reload = now["last_reload_unix_ms"].as_u64().map_or_else(
        || "never".to_owned(),
        |ms| format!("{} s ago", now_ms.saturating_sub(ms) / 1000),
    );
    let _ = writeln!(
        out,
        "wssgate {}  up {} s  config {}  reloaded {}  memory {}  timers {}  throttled addresses {}",
        printable(&now["version"], "?"),
        now["uptime_s"],
        printable(&now["config"], "?"),
        reload,
        mib(&now["rss_bytes"]),
        now["timers"],
        now["throttled_addresses"],
    );
    let header = format!(
        "{:<14} {:>6} {:>7} {:>9} {:>9} {:>11} {:>11} {:>9} {:>11} {:>6} {:>6} {:>8} {:>9}",
        "",
        "open",
        "waiting",
        "msg in/s",
        "msg out/s",
        "bytes in/s",
        "bytes out/s",
        "instances",
        "plugin mem",
        "traps",
        "timers",
        "requests",
        "throttled"
    );
    // A JSON number does not pad itself: as u64 first.
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let row = |label: String, n: &Value, b: &Value| {
        format!(
            "{:<14} {:>6} {:>7} {:>9.0} {:>9.0} {:>11.0} {:>11.0} {:>9} {:>11} {:>6} {:>6} {:>8} {:>9}",
            label,
            count(&n["connections_open"]),
            count(&n["connections_waiting"]),
            rate(n, b, "messages_in", seconds),
            rate(n, b, "messages_out", seconds),
            rate(n, b, "bytes_in", seconds),
            rate(n, b, "bytes_out", seconds),
            count(&n["plugin_instances"]),
            mib(&n["plugin_memory_bytes"]),
            count(&n["traps"]),
            count(&n["timers"]),
            count(&n["requests_in_flight"]),
            // Only workers refuse upgrades for throttling; a route's row has none to show.
            n["throttled_upgrades"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |t| t.to_string()),
        )
    };
    let _ = writeln!(out, "\n{header}");
    let empty = Vec::new();
    let list = |v: &Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
    let (workers, old_workers) = (list(now, "workers"), list(before, "workers"));
    for (i, w) in workers.iter().enumerate() {
        let b = old_workers.get(i).unwrap_or(w);
        let _ = writeln!(out, "{}", row(format!("worker {}", w["worker"]), w, b));
    }
    let _ = writeln!(
        out,
        "{}",
        row("total".to_owned(), &now["totals"], &before["totals"])
    );
    let _ = writeln!(
        out,
        "\n{}",
        header.replacen(&format!("{:<14}", ""), &format!("{:<14}", "route"), 1)
    );
    let old_routes = before["routes"].as_array().unwrap_or(&empty);
    for r in now["routes"].as_array().unwrap_or(&empty) {
        let b = old_routes
            .iter()
            .find(|o| o["route"] == r["route"])
            .unwrap_or(r);
        let _ = writeln!(out, "{}", row(printable(&r["route"], "?"), r, b));
    }
    if let Some(cluster) = now["cluster"].as_object() {
        let _ = writeln!(
            out,
            "\ncluster: {}, {} other node(s), {} publication(s) dropped",
            if cluster["connected"] == true {
                "connected"
            } else {
                "NOT CONNECTED"
            },
            cluster["nodes"],
            cluster["dropped"]
        );
    }
    if let Some(store) = now["store"].as_object() {
        let _ = writeln!(
            out,
            "store: {} ({})",
            printable(&store["kind"], "?"),
            printable(&store["health"], "?")
        );
        for r in now["routes"].as_array().unwrap_or(&empty) {
            let stored = &r["stored"];
            if stored.is_object() {
                let _ = writeln!(
                    out,
                    "  {}: history {} group(s), {} bytes; storage {} key(s), {} bytes",
                    printable(&r["route"], "?"),
                    stored["history_groups"],
                    stored["history_bytes"],
                    stored["keys"],
                    stored["key_bytes"]
                );
            }
        }
    }
    for c in now["certificates"].as_array().unwrap_or(&empty) {
        let _ = writeln!(
            out,
            "certificate: listener {} ({}) expires at {} (Unix time)",
            printable(&c["listener"], "?"),
            printable(&c["source"], "?"),
            c["expires_unix"]
        );
    }
    out
}

/// `/api/connections`' answer as `wssgate connections` prints it: one line per connection.
pub fn connection_lines(answer: &Value) -> String {
    let mut out = format!(
        "{:<20} {:<14} {:<22} {:<12} {:>6} {:>7} {:>9} {:>10} {:>9} {:>10} {:<7}\n",
        "id",
        "route",
        "remote address",
        "user",
        "groups",
        "age s",
        "msgs in",
        "bytes in",
        "msgs out",
        "bytes out",
        "state"
    );
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let empty = Vec::new();
    let listed = answer["connections"].as_array().unwrap_or(&empty);
    for c in listed {
        let _ = writeln!(
            out,
            "{:<20} {:<14} {:<22} {:<12} {:>6} {:>7} {:>9} {:>10} {:>9} {:>10} {:<7}",
            printable(&c["id"], "?"),
            printable(&c["route"], "?"),
            printable(&c["remote_address"], "?"),
            printable(&c["user"], "-"),
            count(&c["groups"]),
            count(&c["age_s"]),
            count(&c["messages_in"]),
            count(&c["bytes_in"]),
            count(&c["messages_out"]),
            count(&c["bytes_out"]),
            printable(&c["state"], "?"),
        );
    }
    let total = count(&answer["total"]);
    if total > listed.len() as u64 {
        let _ = writeln!(out, "… {} of {total} shown (--limit)", listed.len());
    }
    out
}
