//! The Debian package as an operator meets it: built from the workspace with cargo-deb, checked by lintian and
//! `systemd-analyze verify`, installed with dpkg on this machine (the test runs as root), the installed binary
//! serving the installed config as the `wssgate` user, an upgrade that keeps the operator's edit of the conffile,
//! then removal and purge leaving what Debian policy says.
//!
//! The installed config listens on 0.0.0.0:443, which the units bind; tests listen on loopback ports chosen at run
//! time, so the serving step runs a copy of the installed config, next to it in /etc/wssgate, with only the
//! listener's address changed.

use std::path::Path;
use std::process::{Command, Output};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use wssgate_tests::process::ProcessGroup;
use wssgate_tests::*;

const PLUGIN_FILES: [&str; 4] = ["echo_ok.wasm", "echo.wasm", "chat.wasm", "webhook.wasm"];

/// Runs `program args`, returning its output; fails the test if it cannot start.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Runs `program args` and fails the test, showing its output, unless it succeeds; returns stdout and stderr.
fn must(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// Builds the package into `dir` with Debian revision `revision`; `build` says whether cargo-deb builds the
/// release binary first (the second package reuses it).
fn build_package(dir: &Path, revision: &str, build: bool) -> String {
    let out = dir.join(format!("wssgate-{revision}.deb"));
    let mut command = cargo();
    command
        .args([
            "deb",
            "-p",
            "wssgate",
            "--strip",
            "--deb-revision",
            revision,
            "--output",
        ])
        .arg(&out)
        .current_dir(workspace_root());
    if !build {
        command.arg("--no-build");
    }
    let status = command.status().expect("running cargo deb");
    assert!(status.success(), "cargo deb failed");
    out.display().to_string()
}

fn installed_version() -> Option<String> {
    let out = run(
        "dpkg-query",
        &["-W", "-f", "${Status} ${Version}", "wssgate"],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn owner_and_mode(path: &str) -> String {
    must("stat", &["-c", "%U %a", path]).trim().to_owned()
}

#[test]
#[ignore = "needs root, cargo-deb and lintian: ./test.sh installs them and runs this test"]
fn the_package_installs_serves_upgrades_keeping_edits_and_purges() {
    require("root", must("id", &["-u"]).trim() == "0", "sudo ./test.sh");
    require(
        "cargo-deb",
        cargo()
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "cargo install cargo-deb --version 3.6.2 --locked",
    );
    require_tool(
        "lintian",
        Path::new("/usr/bin/lintian"),
        "apt-get install lintian",
    );
    // cargo-deb takes the plugins through host/wssgate/debian/plugins, a link to target/wasm32-wasip2/release.
    require(
        "the default target folder (the package's plugins are linked from target/)",
        target_dir() == workspace_root().join("target"),
        "unset CARGO_TARGET_DIR",
    );
    plugin("echo-ok"); // builds the shipped plugins (release wasm) the package takes
    let dir = scratch_dir("package");
    // A package left installed by an earlier, interrupted run would hide what this one installs.
    if installed_version().is_some() {
        must("dpkg", &["--purge", "wssgate"]);
    }

    let first = build_package(&dir, "1", true);
    let second = build_package(&dir, "2", false);
    let lintian = run("lintian", &["--no-tag-display-limit", &first]);
    let report = String::from_utf8_lossy(&lintian.stdout);
    let errors: Vec<_> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian reports errors:\n{report}");

    // Install: the binary, the plugins, the conffile, the units, the user and its folders.
    must("dpkg", &["--install", &first]);
    assert!(
        installed_version()
            .unwrap()
            .starts_with("install ok installed")
    );
    assert!(Path::new("/usr/bin/wssgate").is_file());
    for file in PLUGIN_FILES {
        assert!(
            Path::new("/usr/lib/wssgate/plugins").join(file).is_file(),
            "{file}"
        );
    }
    let units = ["wssgate.service", "wssgate.socket"].map(|unit| {
        ["/lib/systemd/system", "/usr/lib/systemd/system"]
            .iter()
            .map(|folder| format!("{folder}/{unit}"))
            .find(|path| Path::new(path).is_file())
            .unwrap_or_else(|| panic!("{unit} is not installed"))
    });
    must("systemd-analyze", &["verify", &units[0], &units[1]]);
    assert!(must("getent", &["passwd", "wssgate"]).contains("/var/lib/wssgate"));
    assert_eq!(owner_and_mode("/var/lib/wssgate"), "wssgate 700");
    assert_eq!(
        owner_and_mode("/etc/wssgate/.wssgate-dev-cert"),
        "wssgate 700"
    );
    let conffiles = must("dpkg-query", &["-W", "-f", "${Conffiles}", "wssgate"]);
    assert!(
        conffiles.contains("/etc/wssgate/gateway.toml"),
        "{conffiles}"
    );
    must(
        "/usr/bin/wssgate",
        &["check", "--config", "/etc/wssgate/gateway.toml"],
    );

    serve_installed_config_as_the_wssgate_user();

    // Upgrade: the operator's edit of the conffile stays.
    let edit = "\n# edited by the operator\n";
    let config = std::fs::read_to_string("/etc/wssgate/gateway.toml").unwrap() + edit;
    std::fs::write("/etc/wssgate/gateway.toml", &config).unwrap();
    must("dpkg", &["--install", &second]);
    assert!(installed_version().unwrap().ends_with("-2"));
    assert_eq!(
        std::fs::read_to_string("/etc/wssgate/gateway.toml").unwrap(),
        config
    );

    // Remove: the program goes; the config and the data stay.
    must("dpkg", &["--remove", "wssgate"]);
    assert!(
        installed_version()
            .unwrap()
            .starts_with("deinstall ok config-files")
    );
    assert!(!Path::new("/usr/bin/wssgate").exists());
    assert!(!Path::new("/usr/lib/wssgate").exists());
    assert!(Path::new("/etc/wssgate/gateway.toml").is_file());
    assert!(Path::new("/var/lib/wssgate").is_dir());

    // Purge: config and data go too; the system user stays (Debian policy: its uid is never reused).
    must("dpkg", &["--purge", "wssgate"]);
    assert_eq!(installed_version(), None);
    for gone in ["/etc/wssgate", "/var/lib/wssgate", "/usr/lib/wssgate"] {
        assert!(!Path::new(gone).exists(), "{gone} is left after purge");
    }
    assert!(run("getent", &["passwd", "wssgate"]).status.success());
}

/// Starts `/usr/bin/wssgate` as the `wssgate` user on a copy of the installed config (only the address changed) and
/// gets `ok` for `tom` on `/wss`, over TLS with the development certificate it generates at its first start.
fn serve_installed_config_as_the_wssgate_user() {
    let port = ports::free_port();
    let installed = std::fs::read_to_string("/etc/wssgate/gateway.toml").unwrap();
    assert!(
        installed.contains("address = \"0.0.0.0:443\""),
        "{installed}"
    );
    let copy = "/etc/wssgate/gateway-test.toml";
    std::fs::write(
        copy,
        installed.replace("0.0.0.0:443", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    // setpriv executes the gateway in its place (no fork): the process started is the gateway.
    let mut gateway = ProcessGroup::spawn(
        Command::new("setpriv").args([
            "--reuid=wssgate",
            "--regid=wssgate",
            "--init-groups",
            "/usr/bin/wssgate",
            "serve",
            "--config",
            copy,
        ]),
        libc::SIGTERM,
        "the installed wssgate",
    );
    let listening = ports::listens_within(([127, 0, 0, 1], port).into(), START);
    std::fs::remove_file(copy).unwrap();
    assert!(listening, "the installed gateway never listened on {port}");
    let pid = gateway.child_mut().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    let wssgate = must("id", &["-u", "wssgate"]);
    assert!(
        uids.split_whitespace().all(|uid| uid == wssgate.trim()),
        "the gateway runs as uids {uids}, not wssgate's {wssgate}"
    );

    // The gateway binds before it drops privileges and makes its certificate: wait for the file (bounded).
    let pem = Path::new("/etc/wssgate/.wssgate-dev-cert/localhost.pem");
    let deadline = std::time::Instant::now() + START;
    while !pem.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        owner_and_mode("/etc/wssgate/.wssgate-dev-cert/localhost-key.pem"),
        "wssgate 600"
    );
    let cert = CertificateDer::from_pem_file(pem)
        .expect("the development certificate generated at the first start");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reply = runtime.block_on(async {
        let tcp = bounded(TcpStream::connect(("127.0.0.1", port)))
            .await
            .unwrap();
        let tls = bounded(trusting(&cert).connect(ServerName::try_from("localhost").unwrap(), tcp))
            .await
            .expect("TLS handshake with the development certificate");
        let url = format!("wss://localhost:{port}/wss");
        let (mut ws, _) = bounded(tokio_tungstenite::client_async(url, tls))
            .await
            .expect("the upgrade");
        ask(&mut ws, "tom").await
    });
    assert_eq!(reply, "ok");
    drop(gateway);
}
