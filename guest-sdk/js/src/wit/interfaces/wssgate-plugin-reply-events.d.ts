// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/reply-events@1.3.0' {
  /**
   * A complete text or binary message arrived (as `connection-events.on-message`). `room` is what the
   * connection's outbound queue takes as the event starts: `none` when it takes no message (the connection is
   * closing), else the size in bytes of the largest message it would queue (an empty queue takes any one
   * message: the largest u64). What the event returns is queued for `connection` exactly as a `send` made as it
   * returns would be: after every message the event sent, and, when the queue has no room for it by then,
   * dropped like such a send (a full queue closes the connection with 1008, slow consumer). `none` sends nothing.
   */
  export function onMessage(connection: ConnectionId, message: Message, room: bigint | undefined): Message | undefined;
  export type ConnectionId = import('wssgate:plugin/types@1.3.0').ConnectionId;
  export type Message = import('wssgate:plugin/types@1.3.0').Message;
}
