//! The compile cache (top-level `compile_cache`): a restart loads a plugin compiled before instead of compiling it
//! again; an entry that is not wasmtime's is compiled again; a folder others may write into is not used.

use futures_util::SinkExt;
use std::path::{Path, PathBuf};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wssgate_tests::*;

/// The compiled entries in `folder`.
fn entries(folder: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|listing| listing.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|p| p.extension().is_some_and(|x| x == "cwasm"));
    found
}

/// `wssgate check` of a config serving `plugin` at `/wss`, with `cache` as the compile cache; panics unless it
/// passes, and returns its output.
fn check_with(dir: &Path, cache: &Path, plugin: &Path) -> String {
    let config = format!(
        "compile_cache = \"{}\"\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        cache.display(),
        plugin.display()
    );
    let (ok, text) = check_config(dir, &config);
    assert!(ok, "{text}");
    text
}

/// What `/wss` answers to `tom` on a gateway serving `plugin` with `cache`.
async fn answer_to_tom(cache: &Path, plugin: &Path) -> (String, TestGateway) {
    let gw = TestGateway::start_with(
        &format!("compile_cache = \"{}\"\nworkers = 1\n", cache.display()),
        &format!(
            "[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
            plugin.display()
        ),
    );
    let mut ws = gw.wss("/wss").await;
    bounded(ws.send(WsMessage::text("tom"))).await.unwrap();
    let answer = next_message(&mut ws).await;
    (answer.into_text().unwrap().to_string(), gw)
}

#[tokio::test]
async fn a_restart_runs_the_cached_compilation_and_an_unusable_entry_is_compiled_again() {
    let dir = scratch_dir("compile-cache");
    let cache = dir.join("cache");
    check_with(&dir, &cache, &plugin("echo-ok"));
    let echo_ok = entries(&cache);
    assert_eq!(echo_ok.len(), 1, "one entry for echo-ok: {echo_ok:?}");
    check_with(&dir, &cache, &plugin("echo"));
    let echo: Vec<PathBuf> = entries(&cache)
        .into_iter()
        .filter(|e| !echo_ok.contains(e))
        .collect();
    assert_eq!(echo.len(), 1, "a second plugin, a second entry");
    // Proof that a start runs the cached code and does not compile again: echo's compiled code under echo-ok's name
    // makes the echo-ok route echo. (This is why the folder must be the gateway's own.)
    std::fs::copy(&echo[0], &echo_ok[0]).unwrap();
    let (answer, gw) = answer_to_tom(&cache, &plugin("echo-ok")).await;
    assert_eq!(answer, "tom", "the route ran the cached entry");
    drop(gw);
    // An entry that is not compiled code: the gateway says so, compiles again and serves the real plugin.
    std::fs::write(&echo_ok[0], b"not compiled code").unwrap();
    let (answer, gw) = answer_to_tom(&cache, &plugin("echo-ok")).await;
    assert_eq!(answer, "ok");
    assert!(gw.log().contains("is unusable"), "{}", gw.log());
    assert!(
        std::fs::read(&echo_ok[0]).unwrap().len() > 1000,
        "and stored again"
    );
}

#[test]
fn a_folder_others_may_write_into_is_not_used_and_false_turns_the_cache_off() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("compile-cache-unsafe");
    let cache = dir.join("shared");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let text = check_with(&dir, &cache, &plugin("echo-ok"));
    assert!(text.contains("others may write into it"), "{text}");
    assert!(entries(&cache).is_empty());

    let config = format!(
        "compile_cache = false\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        plugin("echo-ok").display()
    );
    let home = dir.join("home");
    let out = std::process::Command::new(gateway_binary())
        .args(["check", "--config"])
        .arg({
            let path = dir.join("off.toml");
            std::fs::write(&path, config).unwrap();
            path
        })
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("CACHE_DIRECTORY")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!home.exists(), "nothing was cached under $HOME");
}

#[test]
fn the_default_folder_is_systemds_cache_directory_else_the_users_cache() {
    let dir = scratch_dir("compile-cache-default");
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
            plugin("echo-ok").display()
        ),
    )
    .unwrap();
    let run = |vars: &[(&str, &Path)]| {
        let mut command = std::process::Command::new(gateway_binary());
        command
            .args(["check", "--config"])
            .arg(&config)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("CACHE_DIRECTORY");
        for (name, value) in vars {
            command.env(name, value);
        }
        assert!(command.output().unwrap().status.success());
    };
    let (home, systemd) = (dir.join("home"), dir.join("var-cache-wssgate"));
    run(&[("HOME", &home)]);
    assert_eq!(entries(&home.join(".cache/wssgate")).len(), 1);
    std::fs::create_dir(&systemd).unwrap();
    run(&[("HOME", &home), ("CACHE_DIRECTORY", &systemd)]);
    assert_eq!(entries(&systemd.join("compiled")).len(), 1);
}
