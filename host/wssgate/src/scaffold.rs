//! `wssgate new`: scaffolds a plugin the way `cargo new` scaffolds a program — the SDK dependency, an echo plugin in
//! the SDK's shape (with per-connection state), its unit test on the mock host, and a gateway config with its route
//! — so a newcomer's first plugin builds, tests and serves as written. A Rust crate here; TypeScript and Python
//! from their SDK's template ([`languages`]).

use anyhow::{Context, Result, bail, ensure};
use std::path::{Component, Path, PathBuf};

mod languages;

pub use languages::{Lang, new_plugin as new_plugin_in, next_steps};

/// Where the SDK comes from, for the new crate's `Cargo.toml`.
pub enum SdkSource {
    /// A local checkout's `guest-sdk` folder (the SDK of each language in a folder of its own: `rust`, ...).
    Path(PathBuf),
    /// A git repository holding the SDK.
    Git(String),
}

impl SdkSource {
    /// `--sdk` as given: a URL is a git repository, anything else a folder. Without it, the SDK of the checkout this
    /// binary was built from, when it is still there.
    pub fn from_arg(arg: Option<&str>) -> Result<SdkSource> {
        match arg {
            Some(url) if url.contains("://") || url.starts_with("git@") => {
                Ok(SdkSource::Git(url.to_owned()))
            }
            Some(path) => {
                let path = Path::new(path);
                ensure!(
                    path.join("rust/Cargo.toml").is_file(),
                    "--sdk {}: no rust/Cargo.toml there; give the wssgate checkout's guest-sdk folder or a git URL",
                    path.display()
                );
                Ok(SdkSource::Path(path.canonicalize()?))
            }
            None => {
                let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk");
                match built_from.canonicalize() {
                    Ok(path) if path.join("rust/Cargo.toml").is_file() => Ok(SdkSource::Path(path)),
                    _ => bail!(
                        "the wssgate checkout this binary was built from is gone: pass --sdk with the path of a \
                         checkout's guest-sdk folder or the git URL of the wssgate repository"
                    ),
                }
            }
        }
    }
}

/// Writes the crate `name` into `parent/name`; returns its folder.
pub fn new_plugin(name: &str, parent: &Path, sdk: &SdkSource) -> Result<PathBuf> {
    check_name(name)?;
    let dir = new_folder(parent, name)?;
    let dependency = match sdk {
        SdkSource::Path(path) => format!(
            "wssgate-sdk = {{ path = {:?} }}",
            relative(&dir, &path.join("rust")).display().to_string()
        ),
        SdkSource::Git(url) => format!("wssgate-sdk = {{ git = {url:?} }}"),
    };
    // A crate a Cargo workspace lists as a member (under `plugins/*`, say) builds with it, into its target folder;
    // anywhere else it is a workspace of its own, so Cargo does not look for one further up.
    let workspace = workspace_listing(&dir);
    let own_workspace = if workspace.is_some() {
        ""
    } else {
        "\n# A workspace of its own (delete this when adding the crate to an existing workspace).\n[workspace]\n"
    };
    let type_name = type_name(name);
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let target = match &workspace {
        Some(root) => relative(&dir, &root.join("target")),
        None => PathBuf::from("target"),
    };
    let wasm = format!("{}/wasm32-wasip2/release/{wasm}", target.display());
    std::fs::create_dir_all(dir.join("src"))?;
    let files = [
        (
            "Cargo.toml",
            CARGO_TOML
                .replace("{name}", name)
                .replace("{dependency}", &dependency)
                .replace("{workspace}", own_workspace),
        ),
        (
            "src/lib.rs",
            LIB_RS.replace("{name}", name).replace("{Type}", &type_name),
        ),
        (
            "config.toml",
            CONFIG_TOML.replace("{name}", name).replace("{wasm}", &wasm),
        ),
        (".gitignore", "/target\n/.wssgate-dev-cert\n".to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// `parent/name`, which must not exist yet; `parent` is created if need be.
fn new_folder(parent: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let parent = parent.canonicalize()?;
    let dir = parent.join(name);
    ensure!(
        !dir.exists(),
        "{} already exists; choose another name or --path",
        dir.display()
    );
    Ok(dir)
}

/// A crate name Cargo takes and a route path needs no escaping for.
fn check_name(name: &str) -> Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    ensure!(
        valid,
        "{name:?} is not a plugin name: use lower-case letters, digits, `-` and `_`, starting with a letter"
    );
    Ok(())
}

/// The names the generated code already uses: a plugin type named like one of them would not compile.
const TAKEN_TYPE_NAMES: [&str; 4] = ["Plugin", "Connection", "Message", "Client"];

/// `hello-world` → `HelloWorld` (`ClientPlugin` for `client`, which the generated code already names).
fn type_name(name: &str) -> String {
    let camel: String = name
        .split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if TAKEN_TYPE_NAMES.contains(&camel.as_str()) {
        camel + "Plugin"
    } else {
        camel
    }
}

/// The root of the Cargo workspace whose `members` list `krate` (a folder not yet written), if any: the nearest
/// folder above it with a `[workspace]` table.
fn workspace_listing(krate: &Path) -> Option<PathBuf> {
    let (root, manifest) = krate.ancestors().skip(1).find_map(|folder| {
        let text = std::fs::read_to_string(folder.join("Cargo.toml")).ok()?;
        let manifest: toml::Table = text.parse().ok()?;
        manifest
            .contains_key("workspace")
            .then(|| (folder.to_path_buf(), manifest))
    })?;
    let relative = krate.strip_prefix(&root).ok()?;
    let members = manifest.get("workspace")?.get("members")?.as_array()?;
    members
        .iter()
        .filter_map(toml::Value::as_str)
        .any(|pattern| matches_member(pattern, relative))
        .then_some(root)
}

/// Whether a workspace `members` pattern (a path whose components may be `*`) names `path`.
fn matches_member(pattern: &str, path: &Path) -> bool {
    let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let path: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    pattern.len() == path.len() && pattern.iter().zip(&path).all(|(p, c)| *p == "*" || p == c)
}

/// `to` as seen from `from` (both absolute): `../../guest-sdk` rather than a path that breaks when the checkout
/// moves along with the plugin.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        // Only the root in common: an absolute path reads better than a climb to it.
        return to.iter().collect();
    }
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    to[common..].iter().for_each(|c| path.push(c));
    path
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the WebAssembly component the gateway loads; rlib: native unit tests against the SDK's mock host.
crate-type = ["cdylib", "rlib"]

[dependencies]
{dependency}
{workspace}"#;

const LIB_RS: &str = r#"//! {name}: a wssgate plugin. It echoes every message back to its sender; change `on_message` to make it yours.
//!
//! - build: `cargo build --target wasm32-wasip2 --release`
//! - test: `cargo test`
//! - serve: `wssgate serve --config config.toml`, then connect to `wss://localhost:8282/{name}`

use wssgate_sdk::{Connection, Message, Plugin};

/// Route-wide state: one value serves every connection of an instance.
#[derive(Default)]
pub struct {Type};

/// What the plugin keeps for each connection: created when it connects, handed to each of its events, dropped
/// after it closes.
#[derive(Default)]
pub struct Client {
    /// Messages this connection sent.
    pub messages: u64,
}

impl Plugin for {Type} {
    type State = Client;

    fn on_message(&mut self, conn: Connection, client: &mut Client, message: Message) {
        client.messages += 1;
        // A failed send means the client is gone; there is nobody left to tell.
        let _ = conn.send(message);
    }
}

wssgate_sdk::export_plugin!({Type});

#[cfg(test)]
mod tests {
    use super::*;
    use wssgate_sdk::testing::MockHost;

    #[test]
    fn echoes_to_the_sender_and_counts_per_connection() {
        let host = MockHost::<{Type}>::new();
        let a = host.connect("/{name}").unwrap();
        let b = host.connect("/{name}").unwrap();
        host.message(a, "hello");
        host.message(a, vec![1u8, 2]);
        assert_eq!(
            host.take_sent(a),
            vec![Message::from("hello"), Message::Binary(vec![1, 2])]
        );
        assert!(host.take_sent(b).is_empty());
        assert_eq!(host.state(a).map(|c| c.messages), Some(2));
        host.client_close(a, 1000, "bye");
        assert!(host.state(a).is_none(), "its state ended with it");
    }
}
"#;

const CONFIG_TOML: &str = r#"# Serves this plugin: `wssgate serve --config config.toml`, then wss://localhost:8282/{name} (a development
# certificate is generated into .wssgate-dev-cert/ on first start). Relative paths are resolved against this file.

[[listener]]
address = "127.0.0.1:8282"
tls = true

[[route]]
path = "/{name}"
plugin = "{wasm}"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_types_and_bad_names_are_refused() {
        assert_eq!(type_name("hello-world_2"), "HelloWorld2");
        assert_eq!(type_name("client"), "ClientPlugin");
        assert_eq!(type_name("plugin"), "PluginPlugin");
        for bad in ["", "Hello", "1st", "a b", "a/b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("my-plugin_2").is_ok());
    }

    #[test]
    fn workspace_members_match_exactly_or_by_star() {
        assert!(matches_member("plugins/*", Path::new("plugins/hello")));
        assert!(matches_member("plugins/hello/", Path::new("plugins/hello")));
        assert!(!matches_member(
            "plugins/*",
            Path::new("tests/plugins/hello")
        ));
        assert!(!matches_member("host", Path::new("plugins/hello")));
    }

    #[test]
    fn the_sdk_path_is_relative_when_they_share_a_folder() {
        assert_eq!(
            relative(Path::new("/w/plugins/hello"), Path::new("/w/guest-sdk")),
            PathBuf::from("../../guest-sdk")
        );
        assert_eq!(
            relative(Path::new("/tmp/x/hello"), Path::new("/w/guest-sdk")),
            PathBuf::from("/w/guest-sdk")
        );
    }
}
