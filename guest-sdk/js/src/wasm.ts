// The gateway's side of the SDK: the only module that touches the contract's raw imports and exports. wssgate-build
// generates an entry that imports the raw interfaces the plugin needs and hands them to `exportPlugin`, whose result
// becomes the component's exports. Ids cross here: the contract's u64 (a BigInt) becomes the API's decimal string,
// and the u64 counts (offsets, revisions, milliseconds) become numbers, which hold them exactly below 2^53.

/// <reference path="./wit/plugin-full.d.ts" />
import type * as RawHost from "wssgate:plugin/host@1.2.0";
import type * as RawTimers from "wssgate:plugin/timers@1.2.0";
import type * as RawHttp from "wssgate:plugin/http@1.2.0";
import type * as RawHttpEvents from "wssgate:plugin/http-events@1.2.0";
import type * as RawTypes from "wssgate:plugin/types@1.2.0";
import type * as RawStorageTypes from "wssgate:plugin/storage-types@1.2.0";
import type * as RawHistory from "wssgate:plugin/history@1.2.0";
import type * as RawStorage from "wssgate:plugin/storage@1.2.0";
import { Connection } from "./connection.ts";
import { type AnyRefusal, Refused } from "./errors.ts";
import type { AppendResult, HistoryResult } from "./history.ts";
import { type HostCalls, setHost } from "./host.ts";
import { HttpResponse, type HttpRequest, type HttpResult, Sent } from "./http.ts";
import { type StorageError, StorageRequest } from "./memory.ts";
import type { Message } from "./message.ts";
import type { Plugin } from "./plugin.ts";
import { Runtime } from "./runtime.ts";
import { type ReadResult, StoredValue, type WriteResult } from "./storage.ts";
import { Timer } from "./timers.ts";

/**
 * The raw interfaces the component imports: `timers`, `http`, `history` and `storage` only when the plugin handles
 * their events.
 */
export interface RawImports {
  host: typeof RawHost;
  timers?: typeof RawTimers;
  http?: typeof RawHttp;
  history?: typeof RawHistory;
  storage?: typeof RawStorage;
}

/** The WIT's `result` as an export receives it. */
type RawResult<T, E> = { tag: "ok"; val: T } | { tag: "err"; val: E };

const encoder = new TextEncoder();

function toRaw(message: Message): RawTypes.Message {
  return typeof message === "string" ? { tag: "text", val: message } : { tag: "binary", val: message };
}

/** Text arrives as a string, binary as bytes: the variant's value is already the API's message. */
function fromRaw(message: RawTypes.Message): Message {
  return message.val;
}

function ids(list: string[]): BigUint64Array {
  return BigUint64Array.from(list, (id) => BigInt(id));
}

/** Runs a raw call whose WIT result carries a refusal, rethrowing the refusal (the binding's error payload) as `Refused`. */
function refusable<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    const payload = (err as { payload?: unknown } | null)?.payload;
    if (typeof payload === "string") throw new Refused(payload as AnyRefusal);
    throw err;
  }
}

/** A number the contract's u16 can carry, else `fallback` (lowering anything else would trap). */
function u16(value: number, fallback: number): number {
  return Number.isInteger(value) && value >= 0 && value <= 0xffff ? value : fallback;
}

function missing(interfaceName: string, callback: string): Error {
  return new Error(
    `the plugin uses ${interfaceName} but defines no ${callback}, so its component does not import them: ` +
      `define ${callback} in the plugin object and rebuild`,
  );
}

/** An optional connection id as the contract's `option<u64>`. */
function optionalId(id: string | undefined): bigint | undefined {
  return id === undefined ? undefined : BigInt(id);
}

/** An optional count the API checked (a non-negative safe integer) as the contract's `option<u64>`. */
function optionalU64(value: number | undefined): bigint | undefined {
  return value === undefined ? undefined : BigInt(value);
}

function hostCalls({ host, timers, http, history, storage }: RawImports): HostCalls {
  return {
    send: (c, m) => refusable(() => host.send(BigInt(c), toRaw(m))),
    close: (c, code, reason) => host.close(BigInt(c), u16(code, 1008), reason),
    accept: (c) => refusable(() => host.accept(BigInt(c))),
    reject: (c, status, body) => refusable(() => host.reject(BigInt(c), u16(status, 500), body)),
    log: (level, message) => refusable(() => host.log(level, message)),
    setting: (key) => host.setting(key),
    settings: () => host.settings(),
    joinGroup: (c, group) => refusable(() => host.joinGroup(BigInt(c), group)),
    leaveGroup: (c, group) => host.leaveGroup(BigInt(c), group),
    publish: (group, m, exclude) => host.publish(group, toRaw(m), ids(exclude)),
    groupSize: (group) => host.groupSize(group),
    groupsOf: (c) => host.groupsOf(BigInt(c)),
    bindUser: (c, uid) => refusable(() => host.bindUser(BigInt(c), uid)),
    unbindUser: (c) => host.unbindUser(BigInt(c)),
    sendToUser: (uid, m) => host.sendToUser(uid, toRaw(m)),
    isUserOnline: (uid) => host.isUserOnline(uid),
    connectionsOfUser: (uid) => Array.from(host.connectionsOfUser(uid), String),
    broadcast: (m, exclude) => host.broadcast(toRaw(m), ids(exclude)),
    sessionSet: (c, key, value) => refusable(() => host.sessionSet(BigInt(c), key, value)),
    sessionGet: (c, key) => host.sessionGet(BigInt(c), key),
    sessionRemove: (c, key) => host.sessionRemove(BigInt(c), key),
    connectionInfo: (c) => {
      const info = host.connectionInfo(BigInt(c));
      return info && { ...info, connectedAtMs: Number(info.connectedAtMs) };
    },
    setTimer: (delayMs, repeat, owner) => {
      if (!timers) throw missing("timers", "onTimer");
      const id = refusable(() => timers.setTimer(BigInt(delayMs), repeat, owner === undefined ? undefined : BigInt(owner)));
      return String(id);
    },
    cancelTimer: (timer) => {
      if (!timers) throw missing("timers", "onTimer");
      return timers.cancelTimer(BigInt(timer));
    },
    sendRequest: (request: HttpRequest) => {
      if (!http) throw missing("HTTP requests", "onHttpResponse");
      const body = typeof request.body === "string" ? encoder.encode(request.body) : (request.body ?? new Uint8Array());
      const timeoutMs = request.timeoutMs === undefined ? undefined : Math.min(Math.max(0, Math.floor(request.timeoutMs)), 0xffffffff);
      const raw = {
        upstream: request.upstream,
        method: request.method,
        path: request.path,
        headers: request.headers ?? [],
        body,
        timeoutMs,
        owner: request.owner === undefined ? undefined : BigInt(request.owner.id),
      };
      return String(refusable(() => http.sendRequest(raw)));
    },
    cancelRequest: (request) => {
      if (!http) throw missing("HTTP requests", "onHttpResponse");
      return http.cancelRequest(BigInt(request));
    },
    historyAppend: (group, message, owner) => {
      if (!history) throw missing("history", "onAppended or onHistory");
      return String(refusable(() => history.append(group, toRaw(message), optionalId(owner))));
    },
    historyRead: (group, since, limit, owner) => {
      if (!history) throw missing("history", "onAppended or onHistory");
      const position = since && { offset: BigInt(since.offset), epoch: since.epoch };
      return String(refusable(() => history.read(group, position, limit, optionalId(owner))));
    },
    storageGet: (key, owner) => {
      if (!storage) throw missing("storage", "onRead or onWritten");
      return String(refusable(() => storage.get(key, optionalId(owner))));
    },
    storageSet: (key, value, ttlMs, ifRevision, owner) => {
      if (!storage) throw missing("storage", "onRead or onWritten");
      return String(
        refusable(() => storage.set(key, value, optionalU64(ttlMs), optionalU64(ifRevision), optionalId(owner))),
      );
    },
    storageRemove: (key, ifRevision, owner) => {
      if (!storage) throw missing("storage", "onRead or onWritten");
      return String(refusable(() => storage.remove(key, optionalU64(ifRevision), optionalId(owner))));
    },
  };
}

function owner(id: bigint | undefined): Connection | undefined {
  return id === undefined ? undefined : new Connection(String(id));
}

function httpResult(raw: RawHttpEvents.Result<RawHttp.HttpResponse, RawHttp.HttpError>): HttpResult {
  if (raw.tag === "ok") {
    return { ok: true, response: new HttpResponse(raw.val.status, raw.val.body, raw.val.headers) };
  }
  const error = raw.val;
  switch (error.tag) {
    case "timeout":
    case "response-too-large":
      return { ok: false, error: { kind: error.tag } };
    default:
      return { ok: false, error: { kind: error.tag, detail: error.val } };
  }
}

function storageError(raw: RawStorageTypes.StorageError): StorageError {
  switch (raw.tag) {
    case "conflict":
      return { kind: "conflict", revision: Number(raw.val) };
    case "quota-exceeded":
      return { kind: "quota-exceeded" };
    default:
      return { kind: "unavailable", detail: raw.val };
  }
}

function appendResult(raw: RawResult<RawHistory.Position, RawStorageTypes.StorageError>): AppendResult {
  if (raw.tag === "err") return { ok: false, error: storageError(raw.val) };
  return { ok: true, position: { offset: Number(raw.val.offset), epoch: raw.val.epoch } };
}

function historyResult(raw: RawResult<RawHistory.HistoryPage, RawStorageTypes.StorageError>): HistoryResult {
  if (raw.tag === "err") return { ok: false, error: storageError(raw.val) };
  const entries = raw.val.entries.map((e) => ({
    offset: Number(e.offset),
    message: fromRaw(e.message),
    appendedAtMs: Number(e.appendedAtMs),
  }));
  return { ok: true, page: { epoch: raw.val.epoch, entries, complete: raw.val.complete } };
}

function readResult(raw: RawResult<RawStorage.StoredValue | undefined, RawStorageTypes.StorageError>): ReadResult {
  if (raw.tag === "err") return { ok: false, error: storageError(raw.val) };
  const stored = raw.val;
  if (stored === undefined) return { ok: true, value: undefined };
  const expiresAtMs = stored.expiresAtMs === undefined ? undefined : Number(stored.expiresAtMs);
  return { ok: true, value: new StoredValue(stored.value, Number(stored.revision), expiresAtMs) };
}

function writeResult(raw: RawResult<bigint, RawStorageTypes.StorageError>): WriteResult {
  if (raw.tag === "err") return { ok: false, error: storageError(raw.val) };
  return { ok: true, revision: Number(raw.val) };
}

function storageRequest(request: bigint, requestOwner: bigint | undefined): StorageRequest {
  return new StorageRequest(String(request), owner(requestOwner));
}

/**
 * Runs one event; an exception it lets out is written to the gateway's log (the trap that follows says only
 * `unreachable`) and rethrown, so the gateway closes the connection with 1011 and replaces the instance.
 */
function event<T>(raw: RawImports, name: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    const text = err instanceof Error ? (err.stack ? `${err.message}\n${err.stack}` : err.message) : String(err);
    try {
      raw.host.log("error", `uncaught exception in ${name}: ${text}`);
    } catch {
      // Rate limited: the trap is still counted and logged by the gateway.
    }
    throw err;
  }
}

/**
 * The component's exports for `plugin`: `connectionEvents` always, the rest when the plugin defines their callbacks
 * (the generated entry exports only those).
 */
export function exportPlugin<S>(plugin: Plugin<S>, raw: RawImports) {
  setHost(hostCalls(raw));
  const runtime = new Runtime(plugin);
  return {
    connectionEvents: {
      onConnect(connection: bigint, request: RawTypes.RequestInfo): RawTypes.Verdict {
        const answer = event(raw, "on-connect", () => runtime.connect(String(connection), request));
        if (answer.kind === "reject") {
          return { tag: "reject", val: { status: u16(answer.status, 500), body: answer.body } };
        }
        return { tag: answer.kind };
      },
      onMessage(connection: bigint, message: RawTypes.Message): void {
        event(raw, "on-message", () => runtime.message(String(connection), fromRaw(message)));
      },
      onClose(connection: bigint, code: number, reason: string): void {
        event(raw, "on-close", () => runtime.close(String(connection), { code, reason }));
      },
    },
    lifecycle: {
      init(settings: Array<[string, string]>): void {
        const refusal = event(raw, "init", () => runtime.init(new Map(settings)));
        // The binding turns a thrown object with a `payload` into the WIT result's error (a thrown Error would trap).
        if (refusal !== undefined) throw { payload: refusal };
      },
    },
    timerEvents: {
      onTimer(timer: bigint, timerOwner: bigint | undefined): void {
        event(raw, "on-timer", () => runtime.timer(new Timer(String(timer), owner(timerOwner))));
      },
    },
    httpEvents: {
      onHttpResponse(request: bigint, requestOwner: bigint | undefined, response: RawHttpEvents.Result<RawHttp.HttpResponse, RawHttp.HttpError>): void {
        event(raw, "on-http-response", () =>
          runtime.response(new Sent(String(request), owner(requestOwner)), httpResult(response)),
        );
      },
    },
    historyEvents: {
      onAppended(request: bigint, requestOwner: bigint | undefined, answer: RawResult<RawHistory.Position, RawStorageTypes.StorageError>): void {
        event(raw, "on-appended", () => runtime.appended(storageRequest(request, requestOwner), appendResult(answer)));
      },
      onHistory(request: bigint, requestOwner: bigint | undefined, answer: RawResult<RawHistory.HistoryPage, RawStorageTypes.StorageError>): void {
        event(raw, "on-history", () => runtime.history(storageRequest(request, requestOwner), historyResult(answer)));
      },
    },
    storageEvents: {
      onRead(request: bigint, requestOwner: bigint | undefined, answer: RawResult<RawStorage.StoredValue | undefined, RawStorageTypes.StorageError>): void {
        event(raw, "on-read", () => runtime.read(storageRequest(request, requestOwner), readResult(answer)));
      },
      onWritten(request: bigint, requestOwner: bigint | undefined, answer: RawResult<bigint, RawStorageTypes.StorageError>): void {
        event(raw, "on-written", () => runtime.written(storageRequest(request, requestOwner), writeResult(answer)));
      },
    },
  };
}
