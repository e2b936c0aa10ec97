//! Compiled plugins kept on disk, so that a restart, a reload or `wssgate check` followed by `serve` does not
//! compile the same component again: Cranelift takes seconds for a 10–40 MB JavaScript or Python component.
//!
//! An entry is named by the SHA-256 of the component's bytes and of the engine's compatibility hash (wasmtime's
//! version and every setting that changes the code), so a rebuilt plugin or an upgraded gateway never loads stale
//! code. A compiled entry is native code the gateway runs without verifying it again, so the folder must be the
//! gateway's own: it is created `0700`, and one that another user owns or may write into is not used (the gateway
//! compiles as if there were no cache, and says why once). Entries are written to a temporary name and renamed,
//! so concurrent gateways sharing a folder never read half a file; at most [`MAX_ENTRIES`] are kept, the least
//! recently used removed first.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;
use wssgate_config::CompileCache as Setting;

/// Entries a folder keeps: generous for every plugin of a few gateways and their recent rebuilds, while a folder
/// that a build loop fills stays bounded (an entry is about 1–3× its component's size).
const MAX_ENTRIES: usize = 64;

/// The folder compiled plugins are kept in.
#[derive(Debug, Clone)]
pub struct CompileCache {
    folder: PathBuf,
}

/// Feeds `Hash` output into SHA-256: wasmtime states its compatibility as a `Hash`.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        // Only the digest is read (`finalize`); `Hash` implementations never call this.
        0
    }
}

impl CompileCache {
    /// The folder the setting names, created if need be; `None` (with the reason logged) when there is none or it is
    /// not safe to run code from.
    pub fn open(setting: &Setting) -> Option<CompileCache> {
        let folder = match setting {
            Setting::Off => return None,
            Setting::At(folder) => folder.clone(),
            Setting::Default => default_folder()?,
        };
        match prepare(&folder) {
            Ok(()) => Some(CompileCache { folder }),
            Err(why) => {
                tracing::warn!(
                    "compile_cache {}: {why}; plugins are compiled at every load",
                    folder.display()
                );
                None
            }
        }
    }

    /// The compiled form of `wasm` for `engine`: from the folder when it holds it, else compiled now and stored
    /// (a store that fails is logged: the plugin loads all the same).
    #[allow(unsafe_code)]
    pub fn component(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        let entry = self.folder.join(format!("{}.cwasm", key(engine, wasm)));
        if entry.is_file() {
            // SAFETY: the entry was written by `Component::serialize` of a wasmtime with this compatibility hash
            // (its name says so), into a folder only this user can write (`prepare`); wasmtime checks its header
            // and refuses one built for another engine.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(component) => {
                    touch(&entry);
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(
                        "compile_cache: {} is unusable ({e}); compiling again",
                        entry.display()
                    );
                    let _ = std::fs::remove_file(&entry);
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&entry, &component) {
            tracing::warn!("compile_cache: cannot store {}: {e}", entry.display());
        }
        Ok(component)
    }

    fn store(&self, entry: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize().map_err(anyhow::Error::msg)?;
        let temporary = entry.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, entry)?;
        self.evict();
        Ok(())
    }

    /// Removes the least recently used entries past [`MAX_ENTRIES`].
    fn evict(&self) {
        let Ok(listing) = std::fs::read_dir(&self.folder) else {
            return;
        };
        let mut entries: Vec<(SystemTime, PathBuf)> = listing
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        let excess = entries.len() - MAX_ENTRIES;
        for (_, path) in entries.into_iter().take(excess) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// The folder, for messages and tests.
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

/// The name of `wasm`'s entry for `engine`.
fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.write(&Sha256::digest(wasm));
    hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Marks an entry used now, for the eviction order.
fn touch(entry: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(entry) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// systemd's `CacheDirectory`, else the XDG cache folder of the user the gateway runs as.
fn default_folder() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(systemd) = var("CACHE_DIRECTORY") {
        // systemd may list several folders, separated by `:`; the first is this unit's.
        let first = systemd.to_string_lossy().split(':').next()?.to_owned();
        return Some(PathBuf::from(first).join("compiled"));
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("wssgate"))
}

/// Creates `folder` (0700) if need be and checks that only this user can put code there.
fn prepare(folder: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(|e| format!("cannot create it ({e})"))?;
    let meta = std::fs::metadata(folder).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a folder".to_owned());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "owned by uid {}, not by the gateway's user (uid {me})",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "others may write into it (mode {:o}); `chmod go-w` it",
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_folder_loses_its_least_recently_used_entries() {
        let folder = std::env::temp_dir().join(format!("wssgate-evict-{}", std::process::id()));
        prepare(&folder).unwrap();
        let start = SystemTime::now() - Duration::from_secs(3600);
        for n in 0..MAX_ENTRIES + 6 {
            let entry = folder.join(format!("{n:03}.cwasm"));
            std::fs::write(&entry, b"x").unwrap();
            let file = std::fs::File::options().append(true).open(&entry).unwrap();
            file.set_modified(start + Duration::from_secs(n as u64))
                .unwrap();
        }
        // The oldest one was just used: it stays, and the next six oldest go.
        touch(&folder.join("000.cwasm"));
        std::fs::write(folder.join("notes.txt"), b"not an entry").unwrap();
        CompileCache {
            folder: folder.clone(),
        }
        .evict();
        let mut left: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), MAX_ENTRIES + 1, "{left:?}");
        assert!(left.contains(&"000.cwasm".to_owned()));
        assert!(left.contains(&"notes.txt".to_owned()));
        assert!(!left.contains(&"006.cwasm".to_owned()) && left.contains(&"007.cwasm".to_owned()));
        std::fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn an_engine_with_other_settings_gets_another_entry() {
        let engine = |fuel| {
            let mut config = wasmtime::Config::new();
            config.consume_fuel(fuel);
            Engine::new(&config).unwrap()
        };
        let wasm = b"\0asm same bytes";
        assert_eq!(key(&engine(false), wasm), key(&engine(false), wasm));
        assert_ne!(key(&engine(false), wasm), key(&engine(true), wasm));
        assert_ne!(
            key(&engine(false), wasm),
            key(&engine(false), b"\0asm other")
        );
    }
}
