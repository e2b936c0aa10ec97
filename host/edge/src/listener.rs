//! Listening sockets: every worker gets its own `SO_REUSEPORT` socket on the same address, so the kernel spreads
//! connections over the workers without a shared accept queue or a lock.
//!
//! Under systemd socket activation (`LISTEN_FDS`), a listener whose address matches a socket the service manager
//! passed takes that socket instead — one socket, shared by the workers — so a unit can bind port 443 while the
//! gateway itself runs unprivileged.

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

/// The listening sockets the service manager passed, by the address each is bound to.
pub struct Inherited(HashMap<SocketAddr, TcpListener>);

impl Inherited {
    /// The sockets passed through `LISTEN_FDS` (none when the gateway was not socket-activated).
    pub fn from_env() -> Result<Inherited> {
        let mut passed = listenfd::ListenFd::from_env();
        let mut sockets = HashMap::new();
        for index in 0..passed.len() {
            let socket = passed.take_tcp_listener(index).with_context(|| {
                format!("socket activation: passed socket {index} is not a TCP listener")
            })?;
            if let Some(socket) = socket {
                let address = socket
                    .local_addr()
                    .context("socket activation: reading a passed socket's address")?;
                sockets.insert(address, socket);
            }
        }
        Ok(Inherited(sockets))
    }

    /// `error` (a listener that could not bind), with the addresses of the passed sockets no listener has taken,
    /// when there are any: the likely cause is a `[[listener]]` address that differs from the unit's.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        if self.0.is_empty() {
            return error;
        }
        let passed: Vec<String> = self.0.keys().map(ToString::to_string).collect();
        error.context(format!(
            "socket activation passed sockets on {} that match no [[listener]] address",
            passed.join(", ")
        ))
    }

    /// Says so for each passed socket that no listener took.
    pub fn warn_unused(&self) {
        for address in self.0.keys() {
            tracing::warn!(
                "socket activation: the passed socket on {address} matches no [[listener]] address; unused"
            );
        }
    }
}

/// `count` sockets for `address`, one per worker: the passed one (shared) when the service manager passed one for
/// that address, else `count` sockets bound here.
pub fn listen(
    address: SocketAddr,
    count: usize,
    inherited: &mut Inherited,
) -> Result<Vec<TcpListener>> {
    let Some(socket) = inherited.0.remove(&address) else {
        return bind_shared(address, count);
    };
    tracing::info!(
        "socket activation: listening on {address} with the socket the service manager passed"
    );
    socket
        .set_nonblocking(true)
        .with_context(|| format!("{address}: non-blocking mode"))?;
    let mut sockets = Vec::with_capacity(count);
    for _ in 1..count {
        sockets.push(
            socket
                .try_clone()
                .with_context(|| format!("{address}: sharing the passed socket"))?,
        );
    }
    sockets.push(socket);
    Ok(sockets)
}

/// Binds `count` sockets to `address`. The first one resolves port 0; the others bind to the port it got, so tests
/// can ask for `:0` and still have every worker listening on the one port.
fn bind_shared(address: SocketAddr, count: usize) -> Result<Vec<TcpListener>> {
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
