//! `wssgate check` explains every kind of bad input with the file, line, key or import at fault — never a panic.

use std::path::Path;
use std::process::Command;
use wssgate_tests::*;

/// Runs `wssgate check` on `config` written into a scratch dir; returns (success, stdout + stderr).
fn check(config: &str, dir: &Path) -> (bool, String) {
    check_config(dir, config)
}

/// Runs `wssgate check` and asserts that it fails with a message holding every one of `needles`.
fn assert_rejected(config: &str, dir: &Path, needles: &[&str]) {
    let (ok, text) = check(config, dir);
    assert!(!ok, "check accepted a bad config:\n{text}");
    for needle in needles {
        assert!(
            text.contains(needle),
            "the message lacks {needle:?}:\n{text}"
        );
    }
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
    let config = format!(
        "{}max_conections = 5\n",
        plain_listener_with(&plugin("echo"))
    );
    assert_rejected(&config, &dir, &["gateway.toml", "line 8", "max_conections"]);
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let dir = scratch_dir("check-type");
    let config = format!(
        "workers = \"many\"\n{}",
        plain_listener_with(&plugin("echo"))
    );
    assert_rejected(&config, &dir, &["gateway.toml", "line 1", "workers"]);
}

#[test]
fn missing_certificate_names_the_file() {
    let dir = scratch_dir("check-cert");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"missing.pem\"\nkey = \"missing-key.pem\"\n{}",
        standard_routes()
    );
    assert_rejected(&config, &dir, &["missing.pem"]);
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
    assert_rejected(&config, &dir, &["does not fit", "key.pem"]);
}

#[test]
fn invalid_wasm_names_the_plugin_file() {
    let dir = scratch_dir("check-wasm");
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"this is not webassembly").unwrap();
    assert_rejected(
        &plain_listener_with(&bogus),
        &dir,
        &["bogus.wasm", "not a loadable WebAssembly component"],
    );
}

#[test]
fn a_missing_import_is_named() {
    let dir = scratch_dir("check-import");
    assert_rejected(
        &plain_listener_with(&plugin("imports-unknown")),
        &dir,
        &["imports_unknown.wasm", "example:elsewhere/thing"],
    );
}

#[test]
fn a_missing_export_is_named() {
    let dir = scratch_dir("check-export");
    assert_rejected(
        &plain_listener_with(&plugin("not-a-plugin")),
        &dir,
        &[
            "not-a-plugin.wasm",
            "does not export `wssgate:plugin/connection-events`",
        ],
    );
}

#[test]
fn a_plugin_that_cannot_start_within_its_memory_cap_is_named() {
    let dir = scratch_dir("check-memory");
    let config = format!(
        "{}max_memory_mib = 1\n",
        plain_listener_with(&plugin("echo"))
    );
    assert_rejected(
        &config,
        &dir,
        &["echo.wasm", "cannot start the plugin", "memory"],
    );
}

#[test]
fn a_bad_log_level_is_named() {
    let dir = scratch_dir("check-log");
    let config = format!(
        "[log]\nlevel = \"wssgate=loudest\"\n{}",
        plain_listener_with(&plugin("echo"))
    );
    assert_rejected(&config, &dir, &["gateway.toml", "line 1", "[log] `level`"]);
}

#[test]
fn a_missing_plugin_file_names_its_line() {
    let dir = scratch_dir("check-missing");
    assert_rejected(
        &plain_listener_with(&dir.join("nothing-here.wasm")),
        &dir,
        &["line 7", "nothing-here.wasm"],
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

#[test]
fn the_shipped_configs_pass() {
    plugin("echo-ok");
    for name in ["gateway.toml", "behind-nginx.toml"] {
        let (ok, text) = check_file(&workspace_root().join("config").join(name));
        assert!(ok, "{name}:\n{text}");
    }
}

#[test]
fn the_readme_production_config_passes_check() {
    let dir = scratch_dir("check-production");
    let shipped = std::fs::read_to_string(workspace_root().join("config/production.toml")).unwrap();
    let config = shipped
        .replace(
            "/usr/lib/wssgate/plugins/echo_ok.wasm",
            &plugin("echo-ok").display().to_string(),
        )
        .replace("user = \"wssgate\"", "");
    let (ok, text) = check(&config, &dir);
    assert!(ok, "{text}");
    assert!(text.contains("routes: /wss"), "{text}");
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&shipped),
        "the README's production config differs from config/production.toml"
    );
}

#[test]
fn a_public_admin_address_is_refused_without_allow_public_and_warned_about_with_it() {
    let dir = scratch_dir("check-admin-public");
    let base = format!(
        "[admin]\naddress = \"0.0.0.0:9090\"\ntoken = \"0123456789abcdef\"\n{{}}\n{}",
        plain_listener_with(&plugin("echo-ok"))
    );
    assert_rejected(
        &base.replace("{}", ""),
        &dir,
        &["gateway.toml", "line 1", "0.0.0.0:9090", "allow_public"],
    );
    let (ok, text) = check(&base.replace("{}", "allow_public = true"), &dir);
    assert!(ok, "{text}");
    assert!(
        text.contains("warning: [admin] listens on 0.0.0.0:9090") && text.contains("metrics_token"),
        "{text}"
    );
}
