// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
declare module 'wssgate:plugin/lifecycle@1.2.0' {
  /**
   * Called once when an instance starts, before any event (and again in a replacement instance). Receives the
   * route's `[route.settings]`, sorted by key; an error refuses them: `wssgate check` fails with the message,
   * `serve` does not start, and a reload carrying them is rejected with the running config kept. Route-wide timers
   * are armed here. In a replacement instance a refusal or a trap counts as a plugin that cannot run (back-off;
   * its connections are closed with 1011), except in an instance a reload retired, whose refusal is ignored.
   */
  export function init(settings: Array<[string, string]>): void;
}
