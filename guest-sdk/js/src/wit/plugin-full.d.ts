// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./interfaces/wssgate-plugin-connection-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-history-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-history.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-host.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-http-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-http.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-lifecycle.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-storage-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-storage-types.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-storage.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-timer-events.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-timers.d.ts" />
/// <reference path="./interfaces/wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/plugin-full@1.2.0' {
  export type * as WssgatePluginHistory120 from 'wssgate:plugin/history@1.2.0'; // import wssgate:plugin/history@1.2.0
  export type * as WssgatePluginHost120 from 'wssgate:plugin/host@1.2.0'; // import wssgate:plugin/host@1.2.0
  export type * as WssgatePluginHttp120 from 'wssgate:plugin/http@1.2.0'; // import wssgate:plugin/http@1.2.0
  export type * as WssgatePluginStorageTypes120 from 'wssgate:plugin/storage-types@1.2.0'; // import wssgate:plugin/storage-types@1.2.0
  export type * as WssgatePluginStorage120 from 'wssgate:plugin/storage@1.2.0'; // import wssgate:plugin/storage@1.2.0
  export type * as WssgatePluginTimers120 from 'wssgate:plugin/timers@1.2.0'; // import wssgate:plugin/timers@1.2.0
  export type * as WssgatePluginTypes120 from 'wssgate:plugin/types@1.2.0'; // import wssgate:plugin/types@1.2.0
  export * as lifecycle from 'wssgate:plugin/lifecycle@1.2.0'; // export wssgate:plugin/lifecycle@1.2.0
  export * as timerEvents from 'wssgate:plugin/timer-events@1.2.0'; // export wssgate:plugin/timer-events@1.2.0
  export * as httpEvents from 'wssgate:plugin/http-events@1.2.0'; // export wssgate:plugin/http-events@1.2.0
  export * as historyEvents from 'wssgate:plugin/history-events@1.2.0'; // export wssgate:plugin/history-events@1.2.0
  export * as storageEvents from 'wssgate:plugin/storage-events@1.2.0'; // export wssgate:plugin/storage-events@1.2.0
  export * as connectionEvents from 'wssgate:plugin/connection-events@1.2.0'; // export wssgate:plugin/connection-events@1.2.0
}
