// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/http@1.2.0' {
  /**
   * Sends a request; returns at once with its id. Exactly one `on-http-response` follows for every request
   * sent — unless the request is cancelled first, which ends it without an event: by `cancel-request`, when its
   * owner connection closes, or when the instance that made it is replaced (after a trap). A request without an
   * owner is also cancelled when a reload retires the instance (or the instance ends with its last connection),
   * but its exchange still runs to its end, so a notice still reaches the backend; a retired instance's requests
   * without an owner are sent that way from the start.
   */
  export function sendRequest(request: HttpRequest): RequestId;
  /**
   * Cancels one of this instance's requests; false when its response was already delivered, or it is unknown or
   * not this instance's.
   */
  export function cancelRequest(request: RequestId): boolean;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  /**
   * Names one outbound request; unique across the gateway.
   */
  export type RequestId = bigint;
  /**
   * What a plugin asks an upstream.
   */
  export interface HttpRequest {
    /**
     * The `name` of an `[[upstream]]` this route's `upstreams` grants.
     */
    upstream: string,
    /**
     * `GET`, `POST`, … (any token HTTP allows).
     */
    method: string,
    /**
     * Path and query relative to the upstream's URL, starting with `/` (`/users/7?full=1`): appended to the
     * upstream's base path. The scheme and authority are the upstream's; no request can change them.
     */
    path: string,
    /**
     * Request headers. `host`, `content-length` and hop-by-hop headers (`connection`, `transfer-encoding`,
     * `upgrade`, …) are dropped: the gateway sets them.
     */
    headers: Array<[string, string]>,
    body: Uint8Array,
    /**
     * Gives up sooner than the upstream's `timeout_ms` (never later); none: the upstream's.
     */
    timeoutMs?: number,
    /**
     * The connection (of this route, served by this instance) the request is for: it is cancelled when that
     * connection closes, and a trap in its response event is charged to it.
     */
    owner?: ConnectionId,
  }
  /**
   * An upstream's answer. Any status is a response (redirects are not followed).
   */
  export interface HttpResponse {
    status: number,
    /**
     * Response headers in the order received; names are lower-case. Hop-by-hop headers (`connection`,
     * `transfer-encoding`, …) and values that are not valid UTF-8 are dropped.
     */
    headers: Array<[string, string]>,
    body: Uint8Array,
  }
  /**
   * Why a request that was sent got no response.
   */
  export type HttpError = HttpErrorTimeout | HttpErrorConnectFailed | HttpErrorTls | HttpErrorResponseTooLarge | HttpErrorProtocol;
  /**
   * No complete response within the timeout.
   */
  export interface HttpErrorTimeout {
    tag: 'timeout',
  }
  /**
   * The upstream could not be reached (refused, unreachable, DNS).
   */
  export interface HttpErrorConnectFailed {
    tag: 'connect-failed',
    val: string,
  }
  /**
   * The TLS handshake failed (the upstream's certificate is not trusted, or names another host).
   */
  export interface HttpErrorTls {
    tag: 'tls',
    val: string,
  }
  /**
   * The response body passed the upstream's `max_response_bytes`.
   */
  export interface HttpErrorResponseTooLarge {
    tag: 'response-too-large',
  }
  /**
   * The upstream broke HTTP (a malformed response, a connection closed mid-answer).
   */
  export interface HttpErrorProtocol {
    tag: 'protocol',
    val: string,
  }
  /**
   * Why the gateway did not send a request. A refused request gets no response event.
   * # Variants
   * 
   * ## `"not-granted"`
   * 
   * The route's `upstreams` does not name this upstream (or no such upstream exists).
   * ## `"too-many-in-flight"`
   * 
   * The upstream already has `max_in_flight` requests in flight on this worker.
   * ## `"too-large"`
   * 
   * The body is larger than the upstream's `max_request_bytes`.
   * ## `"invalid-request"`
   * 
   * The method, path or a header is not valid HTTP, or the path does not start with `/`.
   * ## `"unknown-connection"`
   * 
   * The owner is not a connection of this route served by this instance.
   * ## `"not-now"`
   * 
   * Requests cannot be made from `init`.
   */
  export type RequestRefusal = 'not-granted' | 'too-many-in-flight' | 'too-large' | 'invalid-request' | 'unknown-connection' | 'not-now';
}
