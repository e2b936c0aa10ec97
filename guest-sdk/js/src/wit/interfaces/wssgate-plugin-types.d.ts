// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
declare module 'wssgate:plugin/types@1.2.0' {
  /**
   * Names one WebSocket connection for its whole life; unique across the gateway (every worker, and every node
   * of a cluster). A plugin can act only on connections of its own route: every call treats another route's id
   * exactly like an unknown one.
   */
  export type ConnectionId = bigint;
  /**
   * One complete WebSocket data message (fragments are already joined by the host).
   */
  export type Message = MessageText | MessageBinary;
  export interface MessageText {
    tag: 'text',
    val: string,
  }
  export interface MessageBinary {
    tag: 'binary',
    val: Uint8Array,
  }
  /**
   * What the client's upgrade request carried.
   */
  export interface RequestInfo {
    /**
     * Request path without the query, e.g. `/wss`.
     */
    path: string,
    /**
     * Raw query string without the leading `?`; empty when there is none.
     */
    query: string,
    /**
     * Request headers in the order the client sent them; names are lower-case.
     */
    headers: Array<[string, string]>,
    /**
     * The client's address as `ip:port` (the real client's, when a trusted proxy said so).
     */
    remoteAddress: string,
    /**
     * The subprotocol the host negotiated from the route's list, if any.
     */
    subprotocol?: string,
    /**
     * True when the host replays on-connect into a fresh instance (after the old one trapped) for a connection
     * the old one knew (open, or still waiting for its answer): see `verdict` for what each answer means then.
     */
    restored: boolean,
  }
  /**
   * An HTTP answer refusing an upgrade.
   */
  export interface Rejection {
    /**
     * 400 to 599; anything else is answered as 500 (and logged). 401 or 403 for a failed login.
     */
    status: number,
    /**
     * A short text body (at most 1024 bytes are sent).
     */
    body: string,
  }
  /**
   * How on-connect answers an upgrade request. The WebSocket is not open yet: the client is waiting for the
   * HTTP answer.
   */
  export type Verdict = VerdictAccept | VerdictReject | VerdictDefer;
  /**
   * Answer 101 and open the WebSocket; on-message and on-close follow.
   */
  export interface VerdictAccept {
    tag: 'accept',
  }
  /**
   * Answer with an HTTP error instead of the upgrade. on-close does not follow.
   */
  export interface VerdictReject {
    tag: 'reject',
    val: Rejection,
  }
  /**
   * Answer later: the client waits until the plugin calls `accept` or `reject` for this connection (from a
   * timer or another event), or until the route's `accept_timeout_ms` passes, which answers 504. No message
   * arrives before the accept. A deferred connection counts toward the connection limits, and it may be sent
   * messages and join groups: they reach the client once it is accepted. Broadcasts reach it only once it is
   * open. When it never opens, its on-close gets code 1006 with the reason "rejected", "accept timed out",
   * "client left", "plugin error" or "server shutting down".
   * 
   * For a replayed on-connect (`restored`), a connection that is already open stays open on `accept` and
   * `defer` alike (the client got its 101 long ago), and is closed with 1008 and the rejection's body as the
   * reason on `reject`; a connection still waiting for its answer gets it as usual.
   */
  export interface VerdictDefer {
    tag: 'defer',
  }
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /**
   * What the host knows of a connection.
   */
  export interface ConnectionDetails {
    path: string,
    query: string,
    headers: Array<[string, string]>,
    remoteAddress: string,
    subprotocol?: string,
    /**
     * When the upgrade request arrived, in milliseconds since the Unix epoch.
     */
    connectedAtMs: bigint,
  }
  /**
   * Why the host refused a call. Each cap is a `[limits]` key of the gateway's config.
   * # Variants
   * 
   * ## `"unknown-connection"`
   * 
   * The connection is closed, unknown, or not one of this route's (the three look the same); for a timer's
   * owner, also a connection of this route served by another worker or node.
   * ## `"name-too-long"`
   * 
   * A group name, user id or session key is longer than `max_name_bytes`.
   * ## `"too-many-groups"`
   * 
   * The connection is already in `max_groups_per_connection` groups.
   * ## `"too-many-timers"`
   * 
   * The instance already holds `max_timers_per_instance` live timers, or (for a timer without an owner) a
   * reload retired it.
   * ## `"too-large"`
   * 
   * The connection's session would pass its size limit (keys and values together, 64 KiB).
   * ## `"rate-limited"`
   * 
   * The instance wrote more than `max_plugin_log_lines_per_sec` log lines in the last second; the line was
   * dropped (and counted in /metrics).
   * ## `"not-deferred"`
   * 
   * `accept` or `reject` for a connection that is not waiting for its answer (it was accepted already, or
   * never deferred).
   */
  export type Refusal = 'unknown-connection' | 'name-too-long' | 'too-many-groups' | 'too-many-timers' | 'too-large' | 'rate-limited' | 'not-deferred';
  /**
   * Names one timer; unique across the gateway. A timer belongs to the instance that started it: it dies with that
   * instance (replaced after a trap, retired by a reload) and with the connection that owns it.
   */
  export type TimerId = bigint;
  /**
   * Why the host refused a send.
   * # Variants
   * 
   * ## `"closed"`
   * 
   * The connection is closed, closing, unknown, or not one of this route's.
   * ## `"queue-full"`
   * 
   * The connection's outbound queue is full (the client reads too slowly): the message was dropped, and the
   * gateway is closing the connection with 1008 (slow consumer).
   */
  export type SendError = 'closed' | 'queue-full';
}
