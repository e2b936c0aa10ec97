//! What a plugin exports: the one required interface (`connection-events`) and the optional ones (`lifecycle`,
//! `timer-events`, `http-events` since 1.1, `history-events` and `storage-events` since 1.2, and whatever later 1.x
//! versions add), probed when the plugin loads so that the host calls only
//! what exists.
//!
//! This is what lets the contract grow: a plugin built before an event interface existed simply does not export it,
//! and still loads. What a plugin imports is checked here too, against what it exports: timers fire through
//! `timer-events` and responses arrive through `http-events`, so a plugin that imports `timers` (or `http`) without
//! exporting the matching events is refused at load, with a message that says what to do, rather than having its
//! events go nowhere.

use super::bindings::exports::wssgate::plugin::{
    connection_events, history_events, http_events, lifecycle, storage_events, timer_events,
};
use super::host_calls::HostState;
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::{Component, Instance, InstancePre};

/// The package every interface of the contract lives in.
const PACKAGE: &str = "wssgate:plugin/";
/// The major version of the contract this gateway implements; it loads a plugin built for any minor version of it.
const MAJOR: &str = "1.";
/// The version the gateway's bindings are generated from; wasmtime matches a plugin's 1.x names to it.
const VERSION: &str = "1.2.0";

/// Where each exported interface's functions are, found once per plugin.
pub(crate) struct ExportIndices {
    connection: connection_events::GuestIndices,
    lifecycle: Option<lifecycle::GuestIndices>,
    timer_events: Option<timer_events::GuestIndices>,
    http_events: Option<http_events::GuestIndices>,
    history_events: Option<history_events::GuestIndices>,
    storage_events: Option<storage_events::GuestIndices>,
}

/// One instance's exports, ready to call.
pub(crate) struct Exports {
    pub connection: connection_events::Guest,
    pub lifecycle: Option<lifecycle::Guest>,
    pub timer_events: Option<timer_events::Guest>,
    pub http_events: Option<http_events::Guest>,
    pub history_events: Option<history_events::Guest>,
    pub storage_events: Option<storage_events::Guest>,
}

/// The indices of optional interface `name`: `None` when the plugin does not export it, an error when it exports
/// the interface without all its functions (a plugin built against a different WIT), which must not be mistaken for
/// an interface left out.
fn optional<T>(
    pre: &InstancePre<HostState>,
    name: &str,
    find: impl FnOnce(&InstancePre<HostState>) -> wasmtime::Result<T>,
    path: &Path,
) -> Result<Option<T>> {
    let interface = format!("{PACKAGE}{name}@{VERSION}");
    if pre.component().get_export_index(None, &interface).is_none() {
        return Ok(None);
    }
    find(pre).map(Some).map_err(|e| {
        anyhow!(
            "{}: exports `{interface}` but not as the contract defines it: {e:#}",
            path.display()
        )
    })
}

/// The contract version a `wssgate:plugin/…@version` name was built for.
fn contract_version(name: &str) -> Option<&str> {
    name.strip_prefix(PACKAGE)?.split_once('@').map(|(_, v)| v)
}

/// Refuses a component built for another major version of the contract, naming the version it was built for.
pub(crate) fn check_contract_version(
    component: &Component,
    engine: &Engine,
    path: &Path,
) -> Result<()> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .chain(ty.exports(engine).map(|(name, _)| name.to_owned()));
    for name in names {
        if let Some(version) = contract_version(&name)
            && !version.starts_with(MAJOR)
        {
            bail!(
                "{}: built for plugin contract wssgate:plugin@{version} (it uses `{name}`); this gateway runs plugins \
                 built for contract 1.x: rebuild it against wssgate-sdk 1.0 (see the README, \"Migrating from 0.x\")",
                path.display()
            );
        }
    }
    Ok(())
}

impl ExportIndices {
    /// Finds the exports of a linked plugin, and refuses one that does not export the connection events or imports
    /// `timers` without exporting `timer-events`.
    pub fn probe(pre: &InstancePre<HostState>, engine: &Engine, path: &Path) -> Result<Self> {
        let connection = connection_events::GuestIndices::new(pre).map_err(|e| {
            anyhow!(
                "{}: does not export `wssgate:plugin/connection-events` (on-connect, on-message, on-close), which \
                 every plugin must: {e:#}",
                path.display()
            )
        })?;
        let indices = ExportIndices {
            connection,
            lifecycle: optional(pre, "lifecycle", lifecycle::GuestIndices::new, path)?,
            timer_events: optional(pre, "timer-events", timer_events::GuestIndices::new, path)?,
            http_events: optional(pre, "http-events", http_events::GuestIndices::new, path)?,
            history_events: optional(
                pre,
                "history-events",
                history_events::GuestIndices::new,
                path,
            )?,
            storage_events: optional(
                pre,
                "storage-events",
                storage_events::GuestIndices::new,
                path,
            )?,
        };
        let imports = |interface: &str| {
            let prefix = format!("{PACKAGE}{interface}@");
            pre.component()
                .component_type()
                .imports(engine)
                .any(|(name, _)| name.starts_with(&prefix))
        };
        let paired = [
            (
                "timers",
                "timer-events",
                indices.timer_events.is_some(),
                "timers would fire",
                "TimerEvents",
                "timers",
            ),
            (
                "http",
                "http-events",
                indices.http_events.is_some(),
                "responses would arrive",
                "HttpEvents",
                "http",
            ),
            (
                "history",
                "history-events",
                indices.history_events.is_some(),
                "history answers would arrive",
                "HistoryEvents",
                "history",
            ),
            (
                "storage",
                "storage-events",
                indices.storage_events.is_some(),
                "storage answers would arrive",
                "StorageEvents",
                "storage",
            ),
        ];
        for (import, export, exported, why, sdk_trait, sdk_arm) in paired {
            if imports(import) && !exported {
                bail!(
                    "{}: imports `wssgate:plugin/{import}` but does not export `wssgate:plugin/{export}`, where its \
                     {why}: export it (with wssgate-sdk, implement `{sdk_trait}` and export the plugin with \
                     `export_plugin!(YourPlugin, {sdk_arm})`)",
                    path.display()
                );
            }
        }
        Ok(indices)
    }

    /// The exports of a fresh instance. A function of the wrong type fails here, when the instance starts (and so in
    /// `wssgate check`), naming the function.
    pub fn load(
        &self,
        mut store: impl wasmtime::AsContextMut,
        instance: &Instance,
    ) -> wasmtime::Result<Exports> {
        Ok(Exports {
            connection: self.connection.load(&mut store, instance)?,
            lifecycle: match &self.lifecycle {
                Some(indices) => Some(indices.load(&mut store, instance)?),
                None => None,
            },
            timer_events: match &self.timer_events {
                Some(indices) => Some(indices.load(&mut store, instance)?),
                None => None,
            },
            http_events: match &self.http_events {
                Some(indices) => Some(indices.load(&mut store, instance)?),
                None => None,
            },
            history_events: match &self.history_events {
                Some(indices) => Some(indices.load(&mut store, instance)?),
                None => None,
            },
            storage_events: match &self.storage_events {
                Some(indices) => Some(indices.load(&mut store, instance)?),
                None => None,
            },
        })
    }
}
