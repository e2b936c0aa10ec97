//! Port 443 without root: under systemd socket activation the gateway serves on the socket the service manager
//! passed (here Debian's `systemd-socket-activate`, as a unit's `.socket` would), not one it binds itself.

use wssgate_tests::*;

const SOCKET_ACTIVATE: &str = "/usr/bin/systemd-socket-activate";

#[tokio::test]
#[ignore = "needs systemd-socket-activate: ./test.sh installs it and runs this test"]
async fn a_socket_activated_gateway_serves_on_the_passed_socket() {
    require_tool(
        "systemd-socket-activate",
        std::path::Path::new(SOCKET_ACTIVATE),
        "apt-get install systemd",
    );
    let port = ports::free_port();
    let dir = scratch_dir("activation");
    let cert = TestCert::create(&dir);
    let config = format!(
        "workers = 2\n[[listener]]\naddress = \"127.0.0.1:{port}\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n{}",
        cert.cert.display(),
        cert.key.display(),
        standard_routes()
    );
    // systemd-socket-activate listens, and starts the gateway when the first connection arrives.
    let knock =
        std::thread::spawn(move || ports::connect_within(([127, 0, 0, 1], port).into(), START));
    let listen = format!("--listen=127.0.0.1:{port}");
    let gw = TestGateway::launch_wrapped(
        &dir,
        &config,
        &[SOCKET_ACTIVATE, &listen],
        &[],
        Some(cert.der),
    );
    assert!(
        knock.join().unwrap().is_some(),
        "systemd-socket-activate never listened on {port}"
    );
    assert_eq!(gw.wss.port(), port);
    assert!(
        gw.log().contains(&format!("socket activation: listening on 127.0.0.1:{port} with the socket the service manager passed")),
        "{}",
        gw.log()
    );
    // Both workers serve from the one passed socket.
    for _ in 0..4 {
        let mut ws = gw.wss("/wss").await;
        assert_eq!(ask(&mut ws, "tom").await, "ok");
    }
}
