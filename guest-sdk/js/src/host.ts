// The host calls as the SDK's API makes them, behind one interface with two sides: the gateway's wasm imports
// (`wasm.ts`, the only module that touches them) and the mock host (`testing/`). The API modules call `host()` and
// never know which side answers.

import type { LogLevel } from "./log.ts";
import type { ConnectionInfo, Message } from "./message.ts";
import type { HttpRequest } from "./http.ts";
import type { Position } from "./history.ts";

/**
 * Every call the WIT's `host`, `timers`, `http`, `history` and `storage` interfaces offer, with connection, timer and
 * request ids as decimal strings, and the other u64 values (offsets, revisions, milliseconds) as numbers the API
 * checked. Refusals are thrown as `Refused`.
 */
export interface HostCalls {
  send(connection: string, message: Message): void;
  close(connection: string, code: number, reason: string): void;
  accept(connection: string): void;
  reject(connection: string, status: number, body: string): void;
  log(level: LogLevel, message: string): void;
  setting(key: string): string | undefined;
  settings(): Array<[string, string]>;
  joinGroup(connection: string, group: string): void;
  leaveGroup(connection: string, group: string): void;
  publish(group: string, message: Message, exclude: string[]): number;
  groupSize(group: string): number;
  groupsOf(connection: string): string[];
  bindUser(connection: string, uid: string): void;
  unbindUser(connection: string): void;
  sendToUser(uid: string, message: Message): number;
  isUserOnline(uid: string): boolean;
  connectionsOfUser(uid: string): string[];
  broadcast(message: Message, exclude: string[]): number;
  sessionSet(connection: string, key: string, value: string): void;
  sessionGet(connection: string, key: string): string | undefined;
  sessionRemove(connection: string, key: string): void;
  connectionInfo(connection: string): ConnectionInfo | undefined;
  setTimer(delayMs: number, repeat: boolean, owner: string | undefined): string;
  cancelTimer(timer: string): boolean;
  sendRequest(request: HttpRequest): string;
  cancelRequest(request: string): boolean;
  historyAppend(group: string, message: Message, owner: string | undefined): string;
  historyRead(group: string, since: Position | undefined, limit: number, owner: string | undefined): string;
  storageGet(key: string, owner: string | undefined): string;
  storageSet(key: string, value: Uint8Array, ttlMs: number | undefined, ifRevision: number | undefined, owner: string | undefined): string;
  storageRemove(key: string, ifRevision: number | undefined, owner: string | undefined): string;
}

let current: HostCalls | undefined;

/** The side that answers host calls now. */
export function host(): HostCalls {
  if (current === undefined) {
    throw new Error(
      "a wssgate host call was made outside an event: calls work inside the plugin's callbacks, and in tests " +
        "inside a MockHost (from 'wssgate/testing')",
    );
  }
  return current;
}

/** Installs the side that answers host calls (the wasm glue once, the mock around each callback); returns the old one. */
export function setHost(calls: HostCalls | undefined): HostCalls | undefined {
  const previous = current;
  current = calls;
  return previous;
}
