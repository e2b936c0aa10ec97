//! WASI sockets, linked so that a plugin which imports them loads, and denied on every use: a plugin reaches the
//! network only through the contract's `http` interface, to the upstreams its route is granted.
//!
//! Why link them at all: language runtimes import them whether or not the plugin uses the network —
//! componentize-py's CPython imports every `wasi:sockets` interface for its `socket` module — and the gateway
//! refuses a component whose imports it does not provide. So they are provided, and answer as a host without a
//! network would: creating a TCP or UDP socket fails with `access-denied`, and a name lookup with
//! `permanent-resolver-failure` (wasmtime-wasi's answers when the context allows none of the three, which is its
//! default, made explicit where the context is built). No socket resource can ever exist, so none of the socket
//! methods is reachable.
//!
//! One interface is the gateway's own: wasmtime-wasi's synchronous `create-udp-socket` runs an async function with
//! `Handle::block_on`, which panics on a worker's runtime thread before it gets to the refusal. The version here
//! refuses at once.

use super::host_calls::HostState;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode};
use wasmtime_wasi::p2::bindings::sync::sockets::udp::IpAddressFamily;
use wasmtime_wasi::p2::{SocketError, SocketResult, UdpSocket};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView, WasiSocketsView};

/// Adds every `wasi:sockets` interface, each refusing what would reach the network.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{sockets, sync};
    let l = linker;
    let options = sockets::network::LinkOptions::default();
    sockets::network::add_to_linker::<HostState, WasiSockets>(l, &options, HostState::sockets)?;
    sockets::instance_network::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::udp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<HostState, WithoutUdp>(l, |t| {
        NoUdp(t.sockets())
    })?;
    Ok(())
}

struct WithoutUdp;

impl HasData for WithoutUdp {
    type Data<'a> = NoUdp<'a>;
}

/// `wasi:sockets/udp-create-socket` without a network; its network resource and error conversions are
/// wasmtime-wasi's.
struct NoUdp<'a>(WasiSocketsCtxView<'a>);

impl network::HostNetwork for NoUdp<'_> {
    fn drop(&mut self, network: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.0, network)
    }
}

impl network::Host for NoUdp<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.0, error)
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime_wasi_io::streams::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.0, error)
    }
}

impl wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket::Host for NoUdp<'_> {
    fn create_udp_socket(
        &mut self,
        _address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        Err(ErrorCode::AccessDenied.into())
    }
}
