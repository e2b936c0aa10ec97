//! Port 443 without running as root: a gateway started as root binds a port below 1024, then becomes the
//! configured `user` for good before it serves; `check` warns about files that user could not read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use wssgate_tests::*;

fn require_root() {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    require(
        "root",
        root,
        "run the tests as root (CI does): only root can bind below 1024 and drop to another user",
    );
}

/// A free loopback port below 1024.
fn privileged_port() -> u16 {
    (600..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("no free port between 600 and 1000 on 127.0.0.1")
}

/// echo-ok copied into `dir`, so the unprivileged user can read it wherever the repository lives.
fn readable_plugin(dir: &Path) -> std::path::PathBuf {
    let copy = dir.join("echo_ok.wasm");
    std::fs::copy(plugin("echo-ok"), &copy).unwrap();
    copy
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
#[ignore = "needs root: ./test.sh runs it (as root in CI)"]
async fn started_as_root_it_binds_below_1024_then_runs_as_the_configured_user() {
    require_root();
    let dir = scratch_dir("privileges");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cert = TestCert::create(&dir);
    let port = privileged_port();
    let config = format!(
        "workers = 2\nuser = \"nobody\"\n[[listener]]\naddress = \"127.0.0.1:{port}\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        cert.cert.display(),
        cert.key.display(),
        readable_plugin(&dir).display()
    );
    let gw = TestGateway::launch(&dir, &config, &[], Some(cert.der));
    assert_eq!(gw.wss.port(), port);
    let nobody = "65534 65534 65534 65534";
    assert_eq!(status_field(gw.pid(), "Uid"), nobody, "{}", gw.log());
    assert_eq!(status_field(gw.pid(), "Gid"), nobody);
    assert_eq!(
        status_field(gw.pid(), "Groups"),
        "",
        "supplementary groups were kept"
    );
    assert!(gw.log().contains("running as user nobody"), "{}", gw.log());
    let mut ws = gw.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
}

#[test]
#[ignore = "needs root: ./test.sh runs it (as root in CI)"]
fn check_warns_about_files_the_user_could_not_read() {
    require_root();
    let dir = scratch_dir("privileges-check");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cert = TestCert::create(&dir);
    std::fs::set_permissions(&cert.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "user = \"nobody\"\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        cert.cert.display(),
        cert.key.display(),
        readable_plugin(&dir).display()
    );
    let (ok, text) = check_config(&dir, &config);
    assert!(ok, "{text}");
    let key = cert.key.display().to_string();
    assert!(
        text.contains(&format!("warning: user `nobody` cannot read {key}")),
        "{text}"
    );
    assert_eq!(
        text.matches("cannot read ").count(),
        1,
        "only the key is unreadable:\n{text}"
    );
}

#[test]
fn a_group_without_a_user_is_an_error() {
    let dir = scratch_dir("privileges-config");
    let (ok, text) = check_config(
        &dir,
        "group = \"nogroup\"\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n",
    );
    assert!(!ok && text.contains("`group` needs `user`"), "{text}");
}
