//! `wssgate new` as a newcomer uses it: the crate it writes builds for wasm32-wasip2, passes its own tests, and
//! serves with the config it came with — outside any repository (a plugin in the user's own repository), and inside
//! a workspace whose members are `plugins/*` (as the README's guide does it in this one).

use std::path::Path;
use std::process::Command;
use wssgate_tests::*;

/// Runs `wssgate new <args>`; panics with its output unless it succeeded.
fn wssgate_new(args: &[&str]) {
    let out = Command::new(gateway_binary())
        .arg("new")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wssgate new {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs cargo in `dir` with the workspace's target folder (so what is already built is reused) and the
/// workspace's lock file (the same dependency versions, resolvable offline).
fn cargo_in(dir: &Path, args: &[&str]) {
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    // Captured, not shown: the inner `cargo test`'s result lines are not this test's.
    let out = cargo()
        .args(args)
        .arg("--offline")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_scaffolded_plugin_outside_any_repository_builds_tests_and_serves() {
    let dir = scratch_dir("scaffold");
    wssgate_new(&["hello-world", "--path", dir.to_str().unwrap()]);
    let krate = dir.join("hello-world");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("wssgate-sdk = { path = "), "{manifest}");
    assert!(
        manifest.contains("[workspace]"),
        "a crate of its own:\n{manifest}"
    );
    cargo_in(&krate, &["build", "--release", "--target", "wasm32-wasip2"]);
    cargo_in(&krate, &["test"]);
    // Its own config, on ports chosen now and with the workspace's target folder, plus the plain listener the test
    // gateway expects.
    let config = std::fs::read_to_string(krate.join("config.toml"))
        .unwrap()
        .replace("127.0.0.1:8282", "127.0.0.1:0")
        .replace(
            "plugin = \"target/",
            &format!("plugin = \"{}/", target_dir().display()),
        );
    let config = format!("{config}\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n");
    let gw = TestGateway::launch(&krate, &config, &[], None);
    let mut ws = gw.wss("/hello-world").await;
    assert_eq!(ask(&mut ws, "tom").await, "tom");
}

#[test]
fn a_plugin_scaffolded_into_a_workspaces_plugins_folder_is_a_member_cargo_finds_by_name() {
    let dir = scratch_dir("scaffold-ws");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"plugins/*\"]\n",
    )
    .unwrap();
    wssgate_new(&["hello", "--path", dir.join("plugins").to_str().unwrap()]);
    let manifest = std::fs::read_to_string(dir.join("plugins/hello/Cargo.toml")).unwrap();
    assert!(!manifest.contains("[workspace]"), "{manifest}");
    // It builds into the workspace's target folder, where its config looks for it.
    let config = std::fs::read_to_string(dir.join("plugins/hello/config.toml")).unwrap();
    assert!(
        config.contains("plugin = \"../../target/wasm32-wasip2/release/hello.wasm\""),
        "{config}"
    );
    cargo_in(&dir, &["test", "-p", "hello"]);
    // A crate the workspace does not list is a workspace of its own, and a name the generated code already uses
    // gets a type of its own.
    wssgate_new(&["client", "--path", dir.join("elsewhere").to_str().unwrap()]);
    let manifest = std::fs::read_to_string(dir.join("elsewhere/client/Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    let code = std::fs::read_to_string(dir.join("elsewhere/client/src/lib.rs")).unwrap();
    assert!(code.contains("pub struct ClientPlugin;"), "{code}");
    cargo_in(&dir.join("elsewhere/client"), &["test"]);
}

#[test]
fn wssgate_new_refuses_a_bad_name_and_an_existing_folder() {
    let dir = scratch_dir("scaffold-bad");
    for args in [
        vec!["Hello", "--path", dir.to_str().unwrap()],
        vec!["x", "--path", dir.to_str().unwrap()],
    ] {
        let _ = Command::new(gateway_binary())
            .arg("new")
            .args(&args)
            .output();
    }
    let again = Command::new(gateway_binary())
        .args(["new", "x", "--path", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let bad = Command::new(gateway_binary())
        .args(["new", "Hello", "--path", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success() && !bad.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a plugin name"));
}

#[test]
fn the_readme_guide_shows_what_wssgate_new_writes_and_the_commands_that_build_it() {
    let dir = scratch_dir("scaffold-readme");
    wssgate_new(&["hello", "--path", dir.to_str().unwrap()]);
    let written = std::fs::read_to_string(dir.join("hello/src/lib.rs")).unwrap();
    // The README shows the file without its `//!` header.
    let body: String = written
        .lines()
        .skip_while(|line| line.starts_with("//!") || line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{body}```")),
        "the README's plugin example is not what `wssgate new hello` writes:\n{body}"
    );
    for command in [
        "./target/release/wssgate new hello --path plugins\ncargo test -p hello\ncargo build --release --target wasm32-wasip2 -p hello\n",
        "plugin = \"../target/wasm32-wasip2/release/hello.wasm\"",
    ] {
        assert!(readme.contains(command), "the README lacks {command:?}");
    }
}
