//! The `http` interface of `wit/plugin.wit` (outbound requests to granted upstreams) and the delivery of its
//! answers through `http-events`.
//!
//! What a hostile plugin could do with it, and what stops it: reach an address the operator did not name (it names
//! an upstream, which its route must grant, and a path; scheme and authority come from the config), flood a
//! backend (`max_in_flight` per worker and upstream), starve the other routes granted it (each route gets at most
//! `max_in_flight_per_route` of those places), exhaust host memory with request or response bodies
//! (`max_request_bytes`, `max_response_bytes`, response headers included), hold work past its life (requests die with
//! their owner connection and with the instance). A hostile client can only make its plugin send requests, which the
//! same caps bound.

use super::bindings::exports::wssgate::plugin::http_events;
use super::bindings::wssgate::plugin::http as wit;
use super::host_calls::HostState;
use crate::upstream::{HttpError, NoPlace, RequestRefusal, UpstreamResponse};
use crate::worker::Worker;
use wssgate_hub::metrics::{CapHit, LiveKind};

impl From<RequestRefusal> for wit::RequestRefusal {
    fn from(refusal: RequestRefusal) -> Self {
        match refusal {
            RequestRefusal::NotGranted => wit::RequestRefusal::NotGranted,
            RequestRefusal::TooManyInFlight => wit::RequestRefusal::TooManyInFlight,
            RequestRefusal::TooLarge => wit::RequestRefusal::TooLarge,
            RequestRefusal::InvalidRequest => wit::RequestRefusal::InvalidRequest,
            RequestRefusal::UnknownConnection => wit::RequestRefusal::UnknownConnection,
            RequestRefusal::NotNow => wit::RequestRefusal::NotNow,
        }
    }
}

impl HostState {
    fn send_request(&mut self, request: wit::HttpRequest) -> Result<u64, RequestRefusal> {
        if self.in_init {
            return Err(RequestRefusal::NotNow);
        }
        if !self.route.upstreams.contains(&request.upstream) {
            return Err(RequestRefusal::NotGranted);
        }
        let client = self
            .links
            .upstreams
            .get(&request.upstream)
            .ok_or(RequestRefusal::NotGranted)?;
        let client = &client;
        // An owner must be one of this instance's connections: its close cancels the request, and only this
        // instance gets the answer.
        let worker = Worker::current();
        if let Some(owner) = request.owner
            && !worker
                .connections
                .is_served_by(owner, &self.route.path, self.instance_uid)
        {
            return Err(RequestRefusal::UnknownConnection);
        }
        let prepared = client.prepare(
            &request.method,
            &request.path,
            &request.headers,
            request.body,
            request.timeout_ms,
        )?;
        let live =
            self.links
                .metrics
                .live(self.links.worker, self.metrics_slot(), LiveKind::Request);
        let place = client.acquire(&self.route.path, live).map_err(|full| {
            if full == NoPlace::RouteShare {
                self.links.cap_hit(CapHit::UpstreamRouteShare);
            }
            RequestRefusal::TooManyInFlight
        })?;
        // A retired instance no longer acts for the route: what it sends without an owner gets no answer back.
        let detached = self.retired && request.owner.is_none();
        Ok(worker.requests.start(
            &self.links.address,
            self.incarnation,
            request.owner,
            client,
            (prepared, place),
            detached,
        ))
    }
}

impl wit::Host for HostState {
    fn send_request(&mut self, request: wit::HttpRequest) -> Result<u64, wit::RequestRefusal> {
        HostState::send_request(self, request).map_err(Into::into)
    }

    fn cancel_request(&mut self, request: u64) -> bool {
        Worker::current().requests.cancel(request, self.incarnation)
    }
}

/// Calls the plugin's `on-http-response` with an answer.
pub fn deliver(
    events: &http_events::Guest,
    store: &mut wasmtime::Store<HostState>,
    request: u64,
    owner: Option<u64>,
    result: &Result<UpstreamResponse, HttpError>,
) -> wasmtime::Result<()> {
    let headers: Vec<(&str, &str)>;
    let answer = match result {
        Ok(response) => {
            headers = response
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            Ok(wit::HttpResponse {
                status: response.status,
                headers: &headers,
                body: &response.body,
            })
        }
        Err(error) => Err(match error {
            HttpError::Timeout => wit::HttpError::Timeout,
            HttpError::ConnectFailed(m) => wit::HttpError::ConnectFailed(m),
            HttpError::Tls(m) => wit::HttpError::Tls(m),
            HttpError::ResponseTooLarge => wit::HttpError::ResponseTooLarge,
            HttpError::Protocol(m) => wit::HttpError::Protocol(m),
        }),
    };
    events.call_on_http_response(store, request, owner, answer)
}
