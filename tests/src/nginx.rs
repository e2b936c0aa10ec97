//! Debian's nginx in front of the gateway, from the shipped config/nginx.conf and config/behind-nginx.toml adapted to
//! loopback test ports.

use crate::ports::{free_port, listens_within};
use crate::process::{ProcessGroup, SIGQUIT};
use crate::{TestCert, TestGateway, WAIT, plugin, require_tool, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const NGINX: &str = "/usr/sbin/nginx";

/// A foreground nginx in a process group of its own, shut down gracefully (SIGQUIT, then the whole group killed
/// if it lingers) when dropped, so no worker process outlives the test.
pub struct Nginx {
    /// The master process and, through its group, the workers.
    _process: ProcessGroup,
    /// Where nginx serves TLS.
    pub address: std::net::SocketAddr,
}

/// Starts nginx from the shipped config/nginx.conf, pointed at loopback ports, the test certificate and `upstream`.
pub fn start_nginx(dir: &Path, cert: &TestCert, upstream: std::net::SocketAddr) -> Nginx {
    start_nginx_edited(dir, cert, upstream, &[])
}

/// Like [`start_nginx`], with each `(from, to)` of `edits` replaced in the shipped config first (e.g. a proxy that
/// sends no `X-Real-IP`).
pub fn start_nginx_edited(
    dir: &Path,
    cert: &TestCert,
    upstream: std::net::SocketAddr,
    edits: &[(&str, &str)],
) -> Nginx {
    let shipped = std::fs::read_to_string(workspace_root().join("config/nginx.conf")).unwrap();
    let port = free_port();
    let replacements = [
        (
            "worker_processes auto;",
            format!(
                "worker_processes 1;\npid {0}/nginx.pid;\nerror_log {0}/error.log;",
                dir.display()
            ),
        ),
        ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
        (
            "/etc/ssl/example.com/fullchain.pem",
            cert.cert.display().to_string(),
        ),
        (
            "/etc/ssl/example.com/privkey.pem",
            cert.key.display().to_string(),
        ),
        (
            "proxy_pass http://127.0.0.1:8282;",
            format!("proxy_pass http://{upstream};"),
        ),
        // The test also reaches the probe plugin through nginx, to see what address the gateway believes.
        ("location /wss {", "location ~ ^/(wss|probe)$ {".to_owned()),
        (
            "http {",
            format!(
                "http {{\n    access_log off;\n    client_body_temp_path {0}/body;\n    proxy_temp_path {0}/proxy;",
                dir.display()
            ),
        ),
    ];
    let mut config = shipped.clone();
    let edits = edits.iter().map(|(from, to)| (*from, (*to).to_owned()));
    for (from, to) in edits.chain(replacements) {
        assert!(
            config.contains(from),
            "config/nginx.conf no longer contains `{from}`"
        );
        config = config.replace(from, &to);
    }
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    require_tool("nginx", &PathBuf::from(NGINX), "apt-get install nginx");
    let process = ProcessGroup::spawn(
        Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        SIGQUIT,
        "nginx",
    );
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        listens_within(address, WAIT),
        "nginx did not listen on {address}; {}",
        error_log(dir)
    );
    Nginx {
        _process: process,
        address,
    }
}

pub fn error_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
}

/// config/behind-nginx.toml with test ports and built plugins, plus the probe route and a TLS listener the
/// harness expects.
pub fn behind_nginx_gateway(dir: &Path) -> TestGateway {
    behind_nginx_gateway_edited(dir, &[])
}

/// Like [`behind_nginx_gateway`], with each `(from, to)` of `edits` replaced in the shipped config first.
pub fn behind_nginx_gateway_edited(dir: &Path, edits: &[(&str, &str)]) -> TestGateway {
    let mut shipped =
        std::fs::read_to_string(workspace_root().join("config/behind-nginx.toml")).unwrap();
    for (from, to) in edits {
        assert!(
            shipped.contains(from),
            "config/behind-nginx.toml no longer contains `{from}`"
        );
        shipped = shipped.replace(from, to);
    }
    let cert = TestCert::create(dir);
    let config = shipped.replace("127.0.0.1:8282", "127.0.0.1:0").replace(
        "../target/wasm32-wasip2/release/echo_ok.wasm",
        &plugin("echo-ok").display().to_string(),
    ) + &format!(
        "\n[[route]]\npath = \"/probe\"\nplugin = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
        plugin("probe").display(),
        cert.cert.display(),
        cert.key.display()
    );
    TestGateway::launch(dir, &config, &[], Some(cert.der))
}
