// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/timer-events@1.2.0' {
  /**
   * A timer started with `set-timer` fired; `owner` is the connection it was started for, if any.
   */
  export function onTimer(timer: TimerId, owner: ConnectionId | undefined): void;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type TimerId = import('wssgate:plugin/types@1.2.0').TimerId;
}
