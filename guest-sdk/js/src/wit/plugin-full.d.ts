// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./interfaces/wssgate-plugin-connection-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-host.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-http-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-http.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-lifecycle.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-timer-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-timers.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/plugin-full@1.1.0' {
  export type * as WssgatePluginHost110 from 'wssgate:plugin/host@1.1.0'; // import wssgate:plugin/host@1.1.0
  export type * as WssgatePluginHttp110 from 'wssgate:plugin/http@1.1.0'; // import wssgate:plugin/http@1.1.0
  export type * as WssgatePluginTimers110 from 'wssgate:plugin/timers@1.1.0'; // import wssgate:plugin/timers@1.1.0
  export type * as WssgatePluginTypes110 from 'wssgate:plugin/types@1.1.0'; // import wssgate:plugin/types@1.1.0
  export * as lifecycle from 'wssgate:plugin/lifecycle@1.1.0'; // export wssgate:plugin/lifecycle@1.1.0
  export * as timerEvents from 'wssgate:plugin/timer-events@1.1.0'; // export wssgate:plugin/timer-events@1.1.0
  export * as httpEvents from 'wssgate:plugin/http-events@1.1.0'; // export wssgate:plugin/http-events@1.1.0
  export * as connectionEvents from 'wssgate:plugin/connection-events@1.1.0'; // export wssgate:plugin/connection-events@1.1.0
}
