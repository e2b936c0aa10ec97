//! The mock's outbound HTTP: requests wait for the test to answer them, and are refused as the gateway refuses them.

use super::MockHost;
use super::state::MockState;
use crate::http::{HttpError, Request, RequestRefusal, Response, Sent};
use crate::runtime::Exported;

/// An HTTP token (RFC 9110 section 5.6.2): what a method and a header name must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl MockState {
    pub(super) fn http_send(&mut self, request: &Request) -> Result<u64, RequestRefusal> {
        assert!(
            self.http_events,
            "the plugin sends HTTP requests but does not export their events, so the gateway would refuse to load \
             it (\"imports `wssgate:plugin/http` but does not export `wssgate:plugin/http-events`\"): implement \
             `HttpEvents` and export it with `export_plugin!(YourPlugin, http)`"
        );
        if self.in_init {
            return Err(RequestRefusal::NotNow);
        }
        if !self.upstreams.contains(&request.upstream) {
            return Err(RequestRefusal::NotGranted);
        }
        if let Some(owner) = request.owner
            && !self.is_live(owner.id())
        {
            return Err(RequestRefusal::UnknownConnection);
        }
        let header_bytes: usize = request
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum();
        if request.body.len() + header_bytes > self.limits.request_bytes {
            return Err(RequestRefusal::TooLarge);
        }
        // The gateway takes header values of visible ASCII, spaces and tabs.
        let valid_headers = request.headers.iter().all(|(n, v)| {
            is_token(n) && v.bytes().all(|b| b == b'\t' || (b' '..0x7f).contains(&b))
        });
        if !is_token(&request.method) || !request.path.starts_with('/') || !valid_headers {
            return Err(RequestRefusal::InvalidRequest);
        }
        if self.outbound.len() >= self.limits.requests_in_flight {
            return Err(RequestRefusal::TooManyInFlight);
        }
        self.last_request += 1;
        self.outbound.insert(self.last_request, request.clone());
        Ok(self.last_request)
    }
}

impl<P: Exported> MockHost<P> {
    /// Grants the route upstream `name` (the route's `upstreams = [...]`); requests to any other are refused with
    /// [`RequestRefusal::NotGranted`].
    pub fn with_upstream(self, name: &str) -> Self {
        self.state.borrow_mut().upstreams.insert(name.to_owned());
        self
    }

    /// Sets how many requests may wait for their answer at once (an upstream's `max_in_flight`, default 1024).
    pub fn with_max_requests_in_flight(self, requests: usize) -> Self {
        self.state.borrow_mut().limits.requests_in_flight = requests;
        self
    }

    /// The requests the plugin sent that wait for an answer, oldest first, each with the handle its answer
    /// carries.
    pub fn http_requests(&self) -> Vec<(Sent, Request)> {
        self.state
            .borrow()
            .outbound
            .iter()
            .map(|(id, r)| (Sent::new(*id, r.owner), r.clone()))
            .collect()
    }

    /// Answers request `sent` with `response`: the plugin's `on_http_response` runs.
    #[track_caller]
    pub fn respond(&self, sent: Sent, response: Response) {
        self.answer(sent, Ok(response));
    }

    /// Fails request `sent` with `error` (a timeout, a refused connection, …): the plugin's `on_http_response`
    /// runs.
    #[track_caller]
    pub fn fail(&self, sent: Sent, error: HttpError) {
        self.answer(sent, Err(error));
    }

    #[track_caller]
    fn answer(&self, sent: Sent, result: Result<Response, HttpError>) {
        let request = self.state.borrow_mut().outbound.remove(&sent.id());
        let Some(request) = request else {
            panic!(
                "request {} is not waiting for an answer (it was answered or cancelled, or never sent)",
                sent.id()
            );
        };
        self.run(|r| r.response(Sent::new(sent.id(), request.owner), result));
    }
}
