//! Let's Encrypt's test ACME server, Debian's `pebble`, with `pebble-challtestsrv` as its DNS server, started on
//! loopback ports chosen at run time and stopped with the test. Validation is real: pebble connects to the
//! gateway's listener (`tlsPort`) for TLS-ALPN-01, and its random `badNonce` rejections stay on.

use crate::ports::{free_port, listens_within};
use crate::process::{ProcessGroup, SIGTERM};
use crate::{TestCert, WAIT, require_tool};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const PEBBLE: &str = "/usr/bin/pebble";
pub const CHALLTESTSRV: &str = "/usr/bin/pebble-challtestsrv";

/// A running pebble and its DNS server.
pub struct Pebble {
    _dns: ProcessGroup,
    _pebble: ProcessGroup,
    /// The ACME directory URL.
    pub directory: String,
    /// The certificate of pebble's own HTTPS API, for the gateway's `ca`.
    pub api_ca: PathBuf,
    /// pebble's management API (for its issuing root).
    management: std::net::SocketAddr,
    api_cert: rustls::pki_types::CertificateDer<'static>,
}

/// Waits (bounded: [`WAIT`]) until `what` listens on `port`; fails with its log otherwise.
fn wait_for_port(port: u16, what: &str, log: &Path) {
    assert!(
        listens_within(([127, 0, 0, 1], port).into(), WAIT),
        "{what} did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn spawn(
    program: &str,
    args: &[String],
    dir: &Path,
    log: &str,
    env: &[(&str, &str)],
) -> ProcessGroup {
    let output = std::fs::File::create(dir.join(log)).unwrap();
    ProcessGroup::spawn(
        Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output),
        SIGTERM,
        program,
    )
}

impl Pebble {
    /// Starts challtestsrv (DNS only; every name resolves to 127.0.0.1) and pebble, whose TLS-ALPN-01 validations
    /// connect to `tls_port`, issuing certificates valid for `validity_seconds`, its ACME API on `api_port`.
    pub fn start(dir: &Path, tls_port: u16, validity_seconds: u64, api_port: u16) -> Pebble {
        require_tool("pebble", Path::new(PEBBLE), "apt-get install pebble");
        require_tool(
            "pebble-challtestsrv",
            Path::new(CHALLTESTSRV),
            "apt-get install pebble",
        );
        std::fs::create_dir_all(dir).unwrap();
        let api = TestCert::create(dir);
        let (dns, challtest_management, management) = (free_port(), free_port(), free_port());
        let dns_server = spawn(
            CHALLTESTSRV,
            &[
                "-dns01".into(),
                format!("127.0.0.1:{dns}"),
                "-http01".into(),
                String::new(),
                "-https01".into(),
                String::new(),
                "-tlsalpn01".into(),
                String::new(),
                "-management".into(),
                format!("127.0.0.1:{challtest_management}"),
                "-defaultIPv4".into(),
                "127.0.0.1".into(),
                "-defaultIPv6".into(),
                String::new(),
            ],
            dir,
            "challtestsrv.log",
            &[],
        );
        wait_for_port(
            challtest_management,
            "pebble-challtestsrv",
            &dir.join("challtestsrv.log"),
        );
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{api_port}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": api.cert,
                "privateKey": api.key,
                "httpPort": free_port(),
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity_seconds,
            }
        });
        std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
        let pebble = spawn(
            PEBBLE,
            &[
                "-config".into(),
                "pebble.json".into(),
                "-dnsserver".into(),
                format!("127.0.0.1:{dns}"),
            ],
            dir,
            "pebble.log",
            &[("PEBBLE_VA_NOSLEEP", "1")],
        );
        wait_for_port(api_port, "pebble", &dir.join("pebble.log"));
        Pebble {
            _dns: dns_server,
            _pebble: pebble,
            directory: format!("https://127.0.0.1:{api_port}/dir"),
            api_ca: api.cert,
            management: ([127, 0, 0, 1], management).into(),
            api_cert: api.der,
        }
    }

    /// The root that signs pebble's certificates (it makes a new one each start), as DER.
    pub async fn issuing_root(&self) -> rustls::pki_types::CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        let tcp = crate::bounded(tokio::net::TcpStream::connect(self.management))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = crate::bounded(crate::trusting(&self.api_cert).connect(name, tcp))
            .await
            .expect("TLS to pebble's management API");
        let answer = crate::raw_exchange(
            tls,
            b"GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        let pem = answer.split("\r\n\r\n").nth(1).expect("a body");
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .expect("pebble's root as PEM")
    }
}
