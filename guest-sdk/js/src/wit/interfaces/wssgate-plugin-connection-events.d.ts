// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/connection-events@1.2.0' {
  /**
   * A client asked to upgrade; the answer decides whether the WebSocket opens (see `verdict`).
   */
  export function onConnect(connection: ConnectionId, request: RequestInfo): Verdict;
  /**
   * A complete text or binary message arrived.
   */
  export function onMessage(connection: ConnectionId, message: Message): void;
  /**
   * The connection is gone: `code` is the close code (1006 when the peer vanished without one, or when a
   * deferred connection never opened). Comes once for every connection whose on-connect accepted or deferred,
   * unless the instance that knew it is gone first: a trap in the connection's own event replaces the instance
   * (the connection is closed with 1011), and a plugin that cannot run is taken down with all its connections.
   */
  export function onClose(connection: ConnectionId, code: number, reason: string): void;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type Message = import('wssgate:plugin/types@1.2.0').Message;
  export type RequestInfo = import('wssgate:plugin/types@1.2.0').RequestInfo;
  export type Verdict = import('wssgate:plugin/types@1.2.0').Verdict;
}
