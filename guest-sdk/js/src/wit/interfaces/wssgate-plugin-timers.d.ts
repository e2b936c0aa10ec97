// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/timers@1.2.0' {
  /**
   * Starts a timer that fires `on-timer` after `delay-ms`, and then every `delay-ms` when `repeat` is true (a tick
   * that comes while the last one is still waiting to be handled is skipped). An `owner` must be a connection
   * (open or deferred) of this route served by this instance: the timer is cancelled when it closes, and a trap in
   * its on-timer is charged to it. Refused for any other owner, past `max_timers_per_instance`, and, for a timer
   * without an owner, once a reload has retired the instance (`too-many-timers`: it serves only its remaining
   * connections).
   */
  export function setTimer(delayMs: bigint, repeat: boolean, owner: ConnectionId | undefined): TimerId;
  /**
   * Cancels one of this instance's timers; false when it had already finished, was unknown or is not this
   * instance's.
   */
  export function cancelTimer(timer: TimerId): boolean;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type Refusal = import('wssgate:plugin/types@1.2.0').Refusal;
  export type TimerId = import('wssgate:plugin/types@1.2.0').TimerId;
}
