//! Plugins written in TypeScript and Python, built from source by their own tools the first time a test process
//! asks for one (and again only when a source of theirs, their SDK or the WIT changed since), then compiled once
//! by `wssgate check` so that the gateways the tests start load them from the compile cache instead of spending
//! half a minute each in Cranelift.
//!
//! The tools are what `./test.sh` installs: the root npm workspace (`npm ci`) and the repository's `.venv` (pip,
//! `guest-sdk/python/requirements.txt`).

use crate::process::run_bounded_blocking;
use crate::{check_config, require, scratch_dir, workspace_root};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The longest one plugin build may take (a Python component is 18 MB of CPython snapshot).
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// The repository's Python, with the SDK and componentize-py installed.
pub fn venv_python() -> PathBuf {
    let python = workspace_root().join(".venv/bin/python");
    require(
        &format!("the Python venv with the SDK ({})", python.display()),
        python.is_file(),
        "python3 -m venv .venv && .venv/bin/pip install -r guest-sdk/python/requirements.txt -e guest-sdk/python",
    );
    python
}

/// Fails the test, naming the command, unless the root npm workspace is installed.
pub fn require_npm_workspace() {
    let componentize =
        workspace_root().join("node_modules/@bytecodealliance/componentize-js/package.json");
    require(
        "the npm workspace (node_modules/)",
        componentize.is_file(),
        "npm ci",
    );
}

/// The built component of the TypeScript plugin in `folder` (relative to the repository, e.g.
/// `tests/plugins/deferred-ts`): `folder/dist/<folder's name>.wasm`.
pub fn ts_plugin(folder: &str) -> PathBuf {
    require_npm_workspace();
    built(folder, &["guest-sdk/js/src", "guest-sdk/js/bin"], |dir| {
        let mut npm = Command::new("npm");
        npm.args(["run", "build"]).current_dir(dir);
        npm
    })
}

/// The built component of the Python plugin in `folder` (e.g. `tests/plugins/deferred-py`), made by its
/// `build.sh` with the repository's venv.
pub fn py_plugin(folder: &str) -> PathBuf {
    let python = venv_python();
    built(folder, &["guest-sdk/python/wssgate"], |dir| {
        let mut sh = Command::new("sh");
        sh.arg("build.sh").env("PYTHON", &python).current_dir(dir);
        sh
    })
}

/// Builds `folder` with `command` unless its component is newer than every source (its own, `sdk` folders, the
/// WIT), then warms the compile cache with it. One build at a time per process.
fn built(folder: &str, sdk: &[&str], command: impl Fn(&Path) -> Command) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(wasm) = built.get(folder) {
        return wasm.clone();
    }
    let root = workspace_root();
    let dir = root.join(folder);
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let wasm = dir.join("dist").join(format!("{name}.wasm"));
    let sources = std::iter::once(dir.clone())
        .chain(sdk.iter().map(|s| root.join(s)))
        .chain(std::iter::once(root.join("wit")));
    let newest = sources.map(|s| newest_in(&s)).max().flatten();
    let current = modified(&wasm).is_some_and(|made| newest.is_none_or(|n| made > n));
    if !current {
        let out = run_bounded_blocking(command(&dir), BUILD_LIMIT);
        assert!(
            out.status.success() && wasm.is_file(),
            "building {folder} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    warm_compile_cache(&wasm);
    built.insert(folder.to_owned(), wasm.clone());
    wasm
}

/// Has `wssgate check` compile `wasm` into the default compile cache, where the test gateways look first.
fn warm_compile_cache(wasm: &Path) {
    let dir = scratch_dir("warm");
    let (ok, text) = check_config(
        &dir,
        &format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[[route]]\npath = \"/warm\"\nplugin = \"{}\"\n",
            wasm.display()
        ),
    );
    assert!(ok, "{} does not load:\n{text}", wasm.display());
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().ok()?.modified().ok()
}

/// The newest modification time under `path`, skipping what builds and installs write.
fn newest_in(path: &Path) -> Option<SystemTime> {
    let meta = path.symlink_metadata().ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let skip = ["dist", "node_modules", "__pycache__", ".pytest_cache"];
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| !skip.contains(&e.file_name().to_string_lossy().as_ref()))
        .filter_map(|e| newest_in(&e.path()))
        .max()
}
