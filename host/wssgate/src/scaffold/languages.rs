//! `wssgate new --lang ts` and `--lang python`: the SDK's template for that language (in the checkout's
//! `guest-sdk/<language>/template`, built into the binary so it always matches this gateway), with the plugin's
//! name and the path of the SDK filled in. npm and pip take the SDK from the checkout's folder, as Cargo does for
//! a Rust plugin, and everything else from their registries at the versions the template pins.

use super::{SdkSource, check_name, new_folder, relative};
use anyhow::{Context, Result, bail, ensure};
use std::path::{Path, PathBuf};

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    /// TypeScript (JavaScript works too): the npm package in `guest-sdk/js`.
    Ts,
    /// The Python package in `guest-sdk/python`.
    Python,
}

/// A template file: where it goes in the new folder, and its text with `{name}` and `{sdk}` to fill in.
type Template = (&'static str, &'static str);

const TYPESCRIPT: [Template; 6] = [
    (
        "package.json",
        include_str!("../../../../guest-sdk/js/template/package.json"),
    ),
    (
        "tsconfig.json",
        include_str!("../../../../guest-sdk/js/template/tsconfig.json"),
    ),
    (
        "config.toml",
        include_str!("../../../../guest-sdk/js/template/config.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../../../guest-sdk/js/template/.gitignore"),
    ),
    (
        "src/plugin.ts",
        include_str!("../../../../guest-sdk/js/template/src/plugin.ts"),
    ),
    (
        "test/plugin.test.ts",
        include_str!("../../../../guest-sdk/js/template/test/plugin.test.ts"),
    ),
];

const PYTHON: [Template; 6] = [
    (
        "requirements.txt",
        include_str!("../../../../guest-sdk/python/template/requirements.txt"),
    ),
    (
        "plugin.py",
        include_str!("../../../../guest-sdk/python/template/plugin.py"),
    ),
    (
        "test_plugin.py",
        include_str!("../../../../guest-sdk/python/template/test_plugin.py"),
    ),
    (
        "build.sh",
        include_str!("../../../../guest-sdk/python/template/build.sh"),
    ),
    (
        "config.toml",
        include_str!("../../../../guest-sdk/python/template/config.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../../../guest-sdk/python/template/.gitignore"),
    ),
];

/// Writes the TypeScript or Python plugin `name` into `parent/name`; returns its folder.
pub fn new_plugin(name: &str, parent: &Path, sdk: &SdkSource, lang: Lang) -> Result<PathBuf> {
    check_name(name)?;
    let (templates, folder) = match lang {
        Lang::Ts => (&TYPESCRIPT, "js"),
        Lang::Python => (&PYTHON, "python"),
        Lang::Rust => bail!("a Rust plugin is scaffolded by `scaffold::new_plugin`"),
    };
    let SdkSource::Path(guest_sdk) = sdk else {
        bail!(
            "--lang {lang:?} needs the SDK from a local wssgate checkout (npm and pip install it from its folder): \
             pass --sdk with the checkout's guest-sdk folder"
        )
    };
    let sdk_folder = guest_sdk.join(folder);
    ensure!(
        sdk_folder.is_dir(),
        "{}: no such folder; give the wssgate checkout's guest-sdk folder with --sdk",
        sdk_folder.display()
    );
    let dir = new_folder(parent, name)?;
    let sdk_path = match lang {
        // A pip requirement line is a bare path: absolute, so it holds wherever pip runs.
        Lang::Python => sdk_folder.clone(),
        _ => relative(&dir, &sdk_folder),
    };
    let sdk_text = sdk_path.to_string_lossy();
    ensure!(
        !sdk_text.contains(char::is_whitespace),
        "{}: the SDK's path has a space, which a requirements line cannot hold; use a checkout without one",
        sdk_text
    );
    for (file, text) in templates {
        let path = dir.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        let text = text.replace("{name}", name).replace("{sdk}", &sdk_text);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// What to type next in the new folder.
pub fn next_steps(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => {
            "build it with `cargo build --target wasm32-wasip2 --release`, test it with `cargo test`, serve it with \
             `wssgate serve --config config.toml`"
        }
        Lang::Ts => {
            "`npm install`, then test it with `npm test`, build it with `npm run build`, serve it with \
             `wssgate serve --config config.toml`"
        }
        Lang::Python => {
            "`python3 -m venv .venv && .venv/bin/pip install -r requirements.txt`, then test it with \
             `.venv/bin/python -m pytest`, build it with `sh build.sh`, serve it with `wssgate serve --config \
             config.toml`"
        }
    }
}
