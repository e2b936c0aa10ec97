// Outbound HTTP to the upstreams the operator granted the route (`[[upstream]]` and the route's `upstreams`). A
// request names an upstream and a path under its URL, never an address, and returns at once; its answer arrives in
// the plugin's `onHttpResponse`, which a plugin that sends requests must define (wssgate-build then imports the
// contract's `http` and exports `http-events`). `fetch` does not work inside the gateway: use this.

import { Connection } from "./connection.ts";
import { host } from "./host.ts";

/** What a plugin asks an upstream. */
export interface HttpRequest {
  /** The `name` of an `[[upstream]]` the route's `upstreams` grants. */
  upstream: string;
  /** `GET`, `POST`, … */
  method: string;
  /** Path and query under the upstream's URL, starting with `/`. */
  path: string;
  headers?: Array<[string, string]>;
  /** A string is sent as UTF-8. */
  body?: string | Uint8Array;
  /** Gives up sooner than the upstream's own timeout (never later). */
  timeoutMs?: number;
  /** The connection the request is for: it is cancelled when that connection closes. */
  owner?: Connection;
}

/** A request that was sent; an equal one (same `id`) reaches `onHttpResponse` with its answer. */
export class Sent {
  readonly id: string;
  readonly owner: Connection | undefined;

  constructor(id: string, owner: Connection | undefined) {
    this.id = id;
    this.owner = owner;
  }

  /** Cancels the request: no event follows. False when its answer was already delivered, or it is not this instance's. */
  cancel(): boolean {
    return host().cancelRequest(this.id);
  }

  equals(other: Sent | undefined): boolean {
    return other !== undefined && other.id === this.id;
  }

  toJSON(): string {
    return this.id;
  }
}

/** An upstream's answer: any status (redirects are not followed). */
export class HttpResponse {
  readonly status: number;
  /** In the order received; names are lower-case. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array;

  constructor(status: number, body: string | Uint8Array = new Uint8Array(), headers: Array<[string, string]> = []) {
    this.status = status;
    this.headers = headers;
    this.body = typeof body === "string" ? new TextEncoder().encode(body) : body;
  }

  /** The first value of header `name` (case-insensitive). */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
  }

  /** The body as text (invalid UTF-8 becomes U+FFFD). */
  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** A 2xx status. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
}

/** Why a request that was sent got no response (the WIT's `http-error`); `detail` explains the last three kinds. */
export type HttpError =
  | { kind: "timeout" }
  | { kind: "response-too-large" }
  | { kind: "connect-failed" | "tls" | "protocol"; detail: string };

/** What `onHttpResponse` receives: the response, or why there is none. */
export type HttpResult = { ok: true; response: HttpResponse } | { ok: false; error: HttpError };

/**
 * Sends a request; returns at once. Exactly one `onHttpResponse` follows, unless the request is cancelled first (by
 * `cancel`, when its owner closes, or when the instance is replaced). Throws `Refused` with a request refusal
 * ("not-granted", "too-many-in-flight", "too-large", "invalid-request", "unknown-connection", "not-now" from `init`);
 * a refused request gets no event.
 */
export function request(request: HttpRequest): Sent {
  const id = host().sendRequest(request);
  return new Sent(id, request.owner);
}

/** A GET to `path` under `upstream`. */
export function get(upstream: string, path: string, options: Partial<HttpRequest> = {}): Sent {
  return request({ ...options, upstream, method: "GET", path });
}

/** A POST of `body` to `path` under `upstream`. */
export function post(upstream: string, path: string, body: string | Uint8Array, options: Partial<HttpRequest> = {}): Sent {
  return request({ ...options, upstream, method: "POST", path, body });
}
