// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/host@1.2.0' {
  /**
   * Queues `message` for the connection; it is written when the current event returns (for a deferred
   * connection, once it is accepted). Exact. A connection served by another worker gets it through that worker's
   * delivery queue: the send fails with `closed` only once that connection is gone (a message for one that is
   * closing is dropped there), with `queue-full` when that worker's delivery queue is full (the message is
   * dropped), and a client whose own queue is full there is closed with 1008 (slow consumer) without the send
   * failing. A connection on another cluster node gets it through the broker: the send fails with `closed` when
   * no node in the cluster holds that id, with `queue-full` when the broker is away or the node's queue to it is
   * full (the message is dropped); a message for a connection that node no longer has is dropped there.
   */
  export function send(connection: ConnectionId, message: Message): void;
  /**
   * Starts the close handshake with `code` and `reason` (a code a peer may not send becomes 1008), also for a
   * connection served by another worker; on-close follows once it completes. For a connection whose upgrade has no answer yet (deferred, or its on-connect
   * running) it refuses the upgrade instead: 403 (500 for code 1011, 503 for 1001).
   */
  export function close(connection: ConnectionId, code: number, reason: string): void;
  /**
   * Answers a deferred connection's upgrade with 101: the WebSocket opens and its messages start to arrive.
   * Refused with `not-deferred` for a connection that is not waiting for its answer.
   */
  export function accept(connection: ConnectionId): void;
  /**
   * Answers a deferred connection's upgrade with an HTTP error (400 to 599, else 500) and a short body;
   * on-close follows. Refused with `not-deferred` for a connection that is not waiting for its answer.
   */
  export function reject(connection: ConnectionId, status: number, body: string): void;
  /**
   * Writes a line to the gateway's log, tagged with the route and plugin; refused (`rate-limited`) past the
   * instance's log-line rate.
   */
  export function log(level: LogLevel, message: string): void;
  /**
   * One value of the route's `[route.settings]` table. Exact.
   */
  export function setting(key: string): string | undefined;
  /**
   * All of the route's settings, sorted by key. Exact.
   */
  export function settings(): Array<[string, string]>;
  /**
   * Adds the connection to one of this route's groups. A closing connection leaves all its groups by itself.
   */
  export function joinGroup(connection: ConnectionId, group: string): void;
  /**
   * Removes the connection from the group.
   */
  export function leaveGroup(connection: ConnectionId, group: string): void;
  /**
   * Sends `message` to every member of the group, except `exclude`. The frame is built once and shared; each
   * member's queue limit still applies. Returns how many members it was queued for: node-local (members on other
   * nodes are sent to but not counted).
   */
  export function publish(group: string, message: Message, exclude: BigUint64Array): number;
  /**
   * How many connections are in the group: cluster-wide, eventually.
   */
  export function groupSize(group: string): number;
  /**
   * The groups the connection is in. Exact (a connection's groups live with it).
   */
  export function groupsOf(connection: ConnectionId): Array<string>;
  /**
   * Binds the connection to a user id; one user may have many connections (phone and desktop).
   */
  export function bindUser(connection: ConnectionId, uid: string): void;
  /**
   * Unbinds the connection from its user id.
   */
  export function unbindUser(connection: ConnectionId): void;
  /**
   * Sends `message` to every connection of the user; returns how many: node-local, like `publish`.
   */
  export function sendToUser(uid: string, message: Message): number;
  /**
   * Whether the user has a connection on this route (open, or waiting for its upgrade's answer): cluster-wide,
   * eventually.
   */
  export function isUserOnline(uid: string): boolean;
  /**
   * The user's connections on this route: cluster-wide, eventually.
   */
  export function connectionsOfUser(uid: string): BigUint64Array;
  /**
   * Sends `message` to every open connection of this route, except `exclude`; returns how many: node-local,
   * like `publish`.
   */
  export function broadcast(message: Message, exclude: BigUint64Array): number;
  /**
   * Stores a value in the connection's session, kept by the gateway across plugin restarts. Exact.
   */
  export function sessionSet(connection: ConnectionId, key: string, value: string): void;
  /**
   * Reads a value from the connection's session. Exact.
   */
  export function sessionGet(connection: ConnectionId, key: string): string | undefined;
  /**
   * Removes a value from the connection's session.
   */
  export function sessionRemove(connection: ConnectionId, key: string): void;
  /**
   * The upgrade request and connect time of a connection of this route (open or deferred), or none: exact.
   */
  export function connectionInfo(connection: ConnectionId): ConnectionDetails | undefined;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type Message = import('wssgate:plugin/types@1.2.0').Message;
  export type LogLevel = import('wssgate:plugin/types@1.2.0').LogLevel;
  export type SendError = import('wssgate:plugin/types@1.2.0').SendError;
  export type ConnectionDetails = import('wssgate:plugin/types@1.2.0').ConnectionDetails;
  export type Refusal = import('wssgate:plugin/types@1.2.0').Refusal;
}
