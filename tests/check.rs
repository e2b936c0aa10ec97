//! `wssgate check` explains every kind of bad input with the file, line, key or import at fault — never a panic.

use std::path::Path;
use std::process::Command;
use wssgate_tests::*;

/// Runs `wssgate check` on `config` written into a scratch dir; returns (success, stdout + stderr).
fn check(config: &str, dir: &Path) -> (bool, String) {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(gateway_binary())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "check panicked:\n{text}");
    (out.status.success(), text)
}

fn plain_listener_with(route_plugin: &Path) -> String {
    format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        route_plugin.display()
    )
}

#[test]
fn a_good_config_passes() {
    let dir = scratch_dir("check-ok");
    let cert = TestCert::create(&dir);
    let config = format!(
        "[[listener]]\naddress = \"[::1]:0\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n{}",
        standard_routes()
    );
    let (ok, text) = check(&config, &dir);
    assert!(ok, "{text}");
    assert!(text.contains("ok") && text.contains("/probe"), "{text}");
    drop(cert);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let dir = scratch_dir("check-key");
    let (ok, text) = check(
        &format!(
            "{}max_conections = 5\n",
            plain_listener_with(&plugin("echo"))
        ),
        &dir,
    );
    assert!(!ok);
    assert!(
        text.contains("gateway.toml") && text.contains("line 8") && text.contains("max_conections"),
        "{text}"
    );
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let dir = scratch_dir("check-type");
    let (ok, text) = check(
        &format!(
            "workers = \"many\"\n{}",
            plain_listener_with(&plugin("echo"))
        ),
        &dir,
    );
    assert!(!ok);
    assert!(
        text.contains("gateway.toml") && text.contains("line 1") && text.contains("workers"),
        "{text}"
    );
}

#[test]
fn missing_certificate_names_the_file() {
    let dir = scratch_dir("check-cert");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"missing.pem\"\nkey = \"missing-key.pem\"\n{}",
        standard_routes()
    );
    let (ok, text) = check(&config, &dir);
    assert!(!ok);
    assert!(text.contains("missing.pem"), "{text}");
}

#[test]
fn a_key_that_does_not_fit_the_certificate_is_named() {
    let dir = scratch_dir("check-mismatch");
    let first = TestCert::create(&dir);
    let other_dir = scratch_dir("check-mismatch-other");
    let second = TestCert::create(&other_dir);
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n{}",
        first.cert.display(),
        second.key.display(),
        standard_routes()
    );
    let (ok, text) = check(&config, &dir);
    assert!(!ok);
    assert!(
        text.contains("does not fit") && text.contains("key.pem"),
        "{text}"
    );
}

#[test]
fn invalid_wasm_names_the_plugin_file() {
    let dir = scratch_dir("check-wasm");
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"this is not webassembly").unwrap();
    let (ok, text) = check(&plain_listener_with(&bogus), &dir);
    assert!(!ok);
    assert!(
        text.contains("bogus.wasm") && text.contains("not a loadable WebAssembly component"),
        "{text}"
    );
}

#[test]
fn a_missing_import_is_named() {
    let dir = scratch_dir("check-import");
    let (ok, text) = check(&plain_listener_with(&plugin("needs-sockets")), &dir);
    assert!(!ok);
    assert!(
        text.contains("needs_sockets.wasm") && text.contains("wasi:sockets"),
        "{text}"
    );
}

#[test]
fn a_missing_export_is_named() {
    let dir = scratch_dir("check-export");
    let (ok, text) = check(&plain_listener_with(&plugin("not-a-plugin")), &dir);
    assert!(!ok);
    assert!(
        text.contains("not-a-plugin.wasm") && text.contains("no export `on-"),
        "{text}"
    );
}

#[test]
fn a_missing_plugin_file_names_its_line() {
    let dir = scratch_dir("check-missing");
    let (ok, text) = check(&plain_listener_with(&dir.join("nothing-here.wasm")), &dir);
    assert!(!ok);
    assert!(
        text.contains("line 7") && text.contains("nothing-here.wasm"),
        "{text}"
    );
}

#[test]
fn help_documents_the_commands_and_options() {
    let run = |args: &[&str]| {
        let out = Command::new(gateway_binary()).args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = run(&["--help"]);
    assert!(top.contains("serve") && top.contains("check"), "{top}");
    let serve = run(&["serve", "--help"]);
    assert!(
        serve.contains("--config") && serve.contains("--workers"),
        "{serve}"
    );
}
