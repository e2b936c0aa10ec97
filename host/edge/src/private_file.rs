//! Files only the gateway's user may read: private keys and ACME account credentials, written by both the
//! development certificate (`tls`) and the ACME cache (`acme`).

use anyhow::{Context, Result};
use std::path::Path;

/// Writes `bytes` to `path`, readable and writable by the owner only (private keys, ACME credentials).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    // `mode` applies only to a file this creates; one copied in earlier may be readable by others.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("{}: cannot make it owner-only", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("{}: cannot write", path.display()))
}
