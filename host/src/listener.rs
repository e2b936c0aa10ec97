//! Listening sockets: every worker gets its own `SO_REUSEPORT` socket on the same address, so the kernel spreads
//! connections over the workers without a shared accept queue or a lock.

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

/// Binds `count` sockets to `address`. The first one resolves port 0; the others bind to the port it got, so tests
/// can ask for `:0` and still have every worker listening on the one port.
pub fn bind_shared(address: SocketAddr, count: usize) -> Result<Vec<TcpListener>> {
    let first = bind_one(address)?;
    let bound = first.local_addr().context("reading the bound address")?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(bound)?);
    }
    Ok(sockets)
}

fn bind_one(address: SocketAddr) -> Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .with_context(|| format!("creating a socket for {address}"))?;
    if address.is_ipv6() {
        socket
            .set_only_v6(true)
            .with_context(|| format!("{address}: IPV6_V6ONLY"))?;
    }
    socket
        .set_reuse_address(true)
        .with_context(|| format!("{address}: SO_REUSEADDR"))?;
    socket
        .set_reuse_port(true)
        .with_context(|| format!("{address}: SO_REUSEPORT"))?;
    socket
        .set_nonblocking(true)
        .with_context(|| format!("{address}: non-blocking mode"))?;
    socket
        .bind(&address.into())
        .with_context(|| format!("cannot listen on {address}"))?;
    socket
        .listen(4096)
        .with_context(|| format!("cannot listen on {address}"))?;
    Ok(socket.into())
}

/// Raises the soft open-files limit to the hard limit: every connection is a file descriptor.
pub fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!("open-files limit is {limit}"),
        Err(e) => tracing::warn!("could not raise the open-files limit: {e}"),
    }
}
