// wssgate: write wssgate plugins in TypeScript. A plugin module default-exports a plugin object (see `Plugin`);
// `wssgate-build src/plugin.ts dist/name.wasm` makes a component of it, and `wssgate/testing` runs it under a mock
// gateway in plain Node. The contract's raw calls stay in `wasm.ts`: nothing here depends on them.

export { Connection } from "./connection.ts";
export { Connections } from "./connections.ts";
export { Refused, type AnyRefusal, type Refusal, type RequestRefusal, type SendRefusal, type StorageRefusal } from "./errors.ts";
export type { CloseFrame, ConnectionInfo, Message, Request } from "./message.ts";
export { header, queryParam } from "./message.ts";
export { accept, defer, definePlugin, reject, type Plugin, type Verdict } from "./plugin.ts";
export { Timer } from "./timers.ts";
export { HttpResponse, Sent, type HttpError, type HttpRequest, type HttpResult } from "./http.ts";
export { StorageRequest, type StorageError } from "./memory.ts";
export type { AppendResult, HistoryEntry, HistoryPage, HistoryResult, Position, ReadOptions } from "./history.ts";
export { StoredValue, type ReadResult, type RemoveOptions, type SetOptions, type WriteResult } from "./storage.ts";
export type { LogLevel } from "./log.ts";
export * as groups from "./groups.ts";
export * as history from "./history.ts";
export * as http from "./http.ts";
export * as log from "./log.ts";
export * as settings from "./settings.ts";
export * as storage from "./storage.ts";
export * as timers from "./timers.ts";
export * as users from "./users.ts";
