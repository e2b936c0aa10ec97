//! Dropping root: a gateway started as root (to bind port 443) binds its listeners, then becomes the configured
//! `user` and `group` for good — supplementary groups cleared — before it reads a certificate, loads a plugin or
//! serves anyone. It refuses to go on if any step fails or root could be regained.

use anyhow::{Context, Result, anyhow, bail};
use nix::unistd::{
    Gid, Group, Uid, User, getegid, geteuid, getgid, getuid, setgid, setgroups, setuid,
};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use wssgate_config::RunAs;

/// The ids `run_as` names.
pub struct Account {
    pub uid: Uid,
    pub gid: Gid,
}

/// Looks up the user and group of `run_as`.
pub fn account(run_as: &RunAs) -> Result<Account> {
    let user = User::from_name(&run_as.user)
        .with_context(|| format!("looking up user `{}`", run_as.user))?
        .ok_or_else(|| anyhow!("`user = \"{}\"`: there is no such user", run_as.user))?;
    let gid = match &run_as.group {
        None => user.gid,
        Some(name) => {
            Group::from_name(name)
                .with_context(|| format!("looking up group `{name}`"))?
                .ok_or_else(|| anyhow!("`group = \"{name}\"`: there is no such group"))?
                .gid
        }
    };
    Ok(Account { uid: user.uid, gid })
}

/// Becomes `run_as` for good. Already being that user is fine; being anyone else but root is an error.
pub fn drop_to(run_as: &RunAs) -> Result<()> {
    let account = account(run_as)?;
    if geteuid() == account.uid && getuid() == account.uid {
        return Ok(());
    }
    if !geteuid().is_root() {
        bail!(
            "`user = \"{}\"` needs the gateway to start as root (it runs as uid {})",
            run_as.user,
            geteuid()
        );
    }
    setgroups(&[]).context("clearing the supplementary groups")?;
    setgid(account.gid).with_context(|| format!("changing to group {}", account.gid))?;
    setuid(account.uid).with_context(|| format!("changing to user {}", run_as.user))?;
    let dropped = getuid() == account.uid
        && geteuid() == account.uid
        && getgid() == account.gid
        && getegid() == account.gid
        && setuid(Uid::from_raw(0)).is_err();
    if !dropped {
        bail!("the privileges were not dropped for good; refusing to serve");
    }
    tracing::info!(
        "running as user {} (uid {}, gid {})",
        run_as.user,
        account.uid,
        account.gid
    );
    Ok(())
}

/// Whether `account` may read `path` (or, with `write`, create files in it), judged by the permission bits of the
/// file and of every folder above it — what `check` can say before the gateway drops to that account.
pub fn allows(account: &Account, path: &Path, write: bool) -> bool {
    if account.uid.is_root() {
        return true;
    }
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    let permits = |meta: &std::fs::Metadata, bits: u32| {
        let shift = if meta.uid() == account.uid.as_raw() {
            6
        } else if meta.gid() == account.gid.as_raw() {
            3
        } else {
            0
        };
        (meta.mode() >> shift) & bits == bits
    };
    let folders_pass = path
        .ancestors()
        .skip(1)
        .all(|folder| std::fs::metadata(folder).is_ok_and(|m| permits(&m, 0o1)));
    let wanted = if write { 0o3 } else { 0o4 };
    folders_pass && std::fs::metadata(&path).is_ok_and(|m| permits(&m, wanted))
}
