//! Several certificates on one listener, chosen by the client's SNI: an exact name, a wildcard, and the first
//! certificate for unknown names and for clients that send none; `check` warns about names a certificate does not
//! cover and about one that expires soon, and refuses one that has expired.

use futures_util::SinkExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::*;

/// A certificate for `names` valid until `days` from now (negative: expired), written as PEM into `dir`.
fn certificate(
    dir: &Path,
    file: &str,
    names: &[&str],
    days: i64,
) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(30);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{file}.pem")),
        dir.join(format!("{file}-key.pem")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.der().clone())
}

/// Accepts any server certificate: these tests look at which one the gateway chose, not whether it is trusted.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn any_certificate() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Connects to `gw` asking for `name` (an IP address sends no SNI); returns the certificate the gateway chose and
/// the TLS stream.
async fn served(
    gw: &TestGateway,
    name: &str,
) -> (
    CertificateDer<'static>,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) {
    let tcp = bounded(tokio::net::TcpStream::connect(gw.wss))
        .await
        .unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = bounded(any_certificate().connect(server_name, tcp))
        .await
        .expect("TLS handshake");
    let chosen = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (chosen, tls)
}

fn listener_with(certificates: &[(&Path, &Path, &[&str])]) -> String {
    let mut config = String::from("workers = 1\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
    for (cert, key, names) in certificates {
        let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        config += &format!(
            "[[listener.certificate]]\ncert = \"{}\"\nkey = \"{}\"\nnames = [{}]\n",
            cert.display(),
            key.display(),
            names.join(", ")
        );
    }
    config
        + &format!(
            "\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
            plugin("echo-ok").display()
        )
}

#[tokio::test]
async fn the_certificate_is_chosen_by_sni_with_wildcards_and_a_default() {
    let dir = scratch_dir("sni");
    let (a_cert, a_key, a) = certificate(&dir, "a", &["a.test"], 90);
    let (b_cert, b_key, b) = certificate(&dir, "b", &["b.test", "*.wild.test"], 90);
    let config = listener_with(&[
        (&a_cert, &a_key, &["a.test"]),
        (&b_cert, &b_key, &["b.test", "*.wild.test"]),
    ]);
    let gw = TestGateway::launch(&dir, &config, &[], Some(a.clone()));
    assert_eq!(served(&gw, "a.test").await.0, a);
    assert_eq!(
        served(&gw, "B.test").await.0,
        b,
        "names are matched without regard to case"
    );
    assert_eq!(served(&gw, "x.wild.test").await.0, b);
    assert_eq!(
        served(&gw, "x.y.wild.test").await.0,
        a,
        "a wildcard covers one label"
    );
    assert_eq!(
        served(&gw, "unknown.test").await.0,
        a,
        "an unknown name gets the first"
    );
    let (chosen, tls) = served(&gw, "127.0.0.1").await;
    assert_eq!(chosen, a, "a client without SNI gets the first");
    // And it serves: tom gets ok through the chosen certificate.
    let url = format!("wss://b.test:{}/wss", gw.wss.port());
    let (mut ws, _) = bounded(tokio_tungstenite::client_async(url, tls))
        .await
        .unwrap();
    bounded(ws.send(Message::text("tom"))).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::text("ok"));
}

#[tokio::test]
async fn check_warns_about_uncovered_names_and_soon_expiry_and_refuses_an_expired_certificate() {
    let dir = scratch_dir("sni-check");
    let (a_cert, a_key, _) = certificate(&dir, "a", &["a.test"], 90);
    let (soon_cert, soon_key, _) = certificate(&dir, "soon", &["soon.test"], 5);
    let config = listener_with(&[
        (&a_cert, &a_key, &["a.test", "other.test"]),
        (&soon_cert, &soon_key, &["soon.test"]),
    ]);
    let (ok, text) = check_config(&dir, &config);
    assert!(ok, "{text}");
    assert!(
        text.contains("warning:") && text.contains("a.pem") && text.contains("`other.test`"),
        "{text}"
    );
    assert!(
        text.contains("soon.pem: the certificate expires in 4 days")
            || text.contains("soon.pem: the certificate expires in 5 days"),
        "{text}"
    );

    let (old_cert, old_key, _) = certificate(&dir, "old", &["old.test"], -1);
    let config = listener_with(&[
        (&a_cert, &a_key, &["a.test"]),
        (&old_cert, &old_key, &["old.test"]),
    ]);
    let (ok, text) = check_config(&dir, &config);
    assert!(!ok, "check accepted an expired certificate:\n{text}");
    assert!(
        text.contains("old.pem: the certificate expired on"),
        "{text}"
    );

    let config = listener_with(&[(&a_cert, &a_key, &["not a name"])]);
    let (ok, text) = check_config(&dir, &config);
    assert!(
        !ok && text.contains("`not a name` is not a DNS name"),
        "{text}"
    );
}

#[tokio::test]
async fn a_reload_picks_up_new_certificate_files() {
    let dir = scratch_dir("sni-reload");
    let (a_cert, a_key, a) = certificate(&dir, "a", &["a.test"], 90);
    let (b_cert, b_key, b) = certificate(&dir, "b", &["b.test"], 90);
    let config = listener_with(&[
        (&a_cert, &a_key, &["a.test"]),
        (&b_cert, &b_key, &["b.test"]),
    ]);
    let gw = TestGateway::launch(&dir, &config, &[], Some(a.clone()));
    assert_eq!(served(&gw, "b.test").await.0, b);
    // New files at the same paths (a renewal by another tool), then SIGHUP.
    let (_, _, renewed) = certificate(&dir, "b", &["b.test"], 90);
    assert!(gw.reload(&dir, &config), "{}", gw.log());
    assert_eq!(served(&gw, "b.test").await.0, renewed);
    assert_eq!(served(&gw, "a.test").await.0, a);
}
