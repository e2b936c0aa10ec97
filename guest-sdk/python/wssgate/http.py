"""Outbound HTTP to the upstreams the operator granted the route (``[[upstream]]`` in the gateway config and the
route's ``upstreams = [...]``). A request names an upstream and a path under its URL, never an address, and returns
at once; its answer arrives later in the plugin's ``on_http_response(self, request, result, connections)``, which a
plugin that sends requests must define (the build then imports the gateway's http).

    sent = http.post("backend", "/login", body=b'{"token":"abc"}',
                     headers=[("content-type", "application/json")], timeout=2, owner=conn)

    def on_http_response(self, request, result, connections):
        if isinstance(result, http.HttpError): ...          # result.kind: "timeout", "connect-failed", ...
        elif result.ok: request.owner.send(result.text())

Exactly one response event follows every request sent, unless it is cancelled first (`Sent.cancel()`, its owner
closing, the instance being replaced). Requests cannot be sent from `init` (`Refused("not-now")`).
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

from . import _host
from .connection import Connection


@dataclass
class Request:
    """A request to an upstream; `send()` sends it."""

    method: str
    #: The `name` of an ``[[upstream]]`` the route grants.
    upstream: str
    #: Path and query under the upstream's URL, starting with ``/``.
    path: str
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: Seconds; gives up sooner than the upstream's own timeout (never later).
    timeout: Optional[float] = None
    #: The connection the request is for: it is cancelled when that connection closes.
    owner: Optional[Connection] = None

    def send(self) -> "Sent":
        """Sends the request; returns at once. Raises `Refused` with ``"not-granted"``, ``"too-many-in-flight"``,
        ``"too-large"``, ``"invalid-request"``, ``"unknown-connection"`` or ``"not-now"`` (from `init`); a refused
        request gets no response event."""
        return Sent(_host.current().send_request(self), self.owner)


def request(method: str, upstream: str, path: str, *, headers=(), body: Union[bytes, str] = b"", timeout=None,
            owner: Optional[Connection] = None) -> "Sent":
    """Builds and sends a request (see `Request.send`); a `str` body is sent as UTF-8."""
    if isinstance(body, str):
        body = body.encode()
    return Request(method, upstream, path, list(headers), bytes(body), timeout, owner).send()


def get(upstream: str, path: str, **options) -> "Sent":
    return request("GET", upstream, path, **options)


def post(upstream: str, path: str, **options) -> "Sent":
    return request("POST", upstream, path, **options)


class Sent:
    """A request that was sent; an equal value reaches `on_http_response` with its answer."""

    __slots__ = ("id", "owner")

    def __init__(self, id: int, owner: Optional[Connection] = None):
        self.id = id
        #: The connection the request was sent for, if any.
        self.owner = owner

    def __eq__(self, other):
        return isinstance(other, Sent) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"Sent({self.id}, owner={self.owner!r})"

    def cancel(self) -> bool:
        """Cancels the request: no event follows. False when its answer was already delivered, or it is not this
        instance's."""
        return _host.current().cancel_request(self.id)


@dataclass
class Response:
    """An upstream's answer: any status (redirects are not followed)."""

    status: int
    #: In the order received; names are lower-case.
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (case-insensitive)."""
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")


#: The ways a sent request can fail, by their contract names.
ERROR_KINDS = ("timeout", "connect-failed", "tls", "response-too-large", "protocol")


@dataclass
class HttpError:
    """Why a sent request got no response: `kind` is one of `ERROR_KINDS`; `message` details ``connect-failed``,
    ``tls`` and ``protocol``."""

    kind: str
    message: str = ""

    def __str__(self):
        return f"{self.kind}: {self.message}" if self.message else self.kind
