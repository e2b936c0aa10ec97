// The shape of a plugin: the callbacks the gateway calls, and the verdicts on-connect answers with.

import type { Connection } from "./connection.ts";
import type { Connections } from "./connections.ts";
import type { AppendResult, HistoryResult } from "./history.ts";
import type { HttpResult, Sent } from "./http.ts";
import type { StorageRequest } from "./memory.ts";
import type { CloseFrame, Message, Request } from "./message.ts";
import type { ReadResult, WriteResult } from "./storage.ts";
import type { Timer } from "./timers.ts";

/** How on-connect answers an upgrade; `accept` and `defer` carry the connection's state, which the SDK keeps. */
export type Verdict<S> =
  | { readonly kind: "accept"; readonly state: S }
  | { readonly kind: "defer"; readonly state: S }
  | { readonly kind: "reject"; readonly status: number; readonly body: string };

/** Open the WebSocket (101), keeping `state` for the connection. */
export function accept<S>(state: S): Verdict<S> {
  return { kind: "accept", state };
}

/**
 * Answer later with `conn.accept()` or `conn.reject()`, from a timer or another event; the client waits meanwhile,
 * and gets 504 when the route's `accept_timeout_ms` (10 s by default) passes first. No message arrives before the
 * accept; on-close follows whatever the outcome (1006 when the WebSocket never opened).
 */
export function defer<S>(state: S): Verdict<S> {
  return { kind: "defer", state };
}

/**
 * Refuse with an HTTP error (400 to 599; anything else is answered as 500) and a short body (at most 1 KiB is sent):
 * no WebSocket, no on-close, no state.
 */
export function reject(status: number, body = ""): Verdict<never> {
  return { kind: "reject", status, body };
}

/**
 * A plugin: one object serves every connection of its route on one instance, so route-wide state lives in it (or in
 * the module). What it keeps per connection is its `S`: `onConnect`'s verdict creates it, every later event of the
 * connection receives it, and it is dropped after `onClose`. Every callback is optional.
 *
 * The optional callbacks decide what the component imports and exports: wssgate-build gives a plugin with `init` the
 * contract's `lifecycle`, one with `onTimer` its `timers` (and `timer-events`), one with `onHttpResponse` its `http`
 * (and `http-events`), one with `onAppended` or `onHistory` its `history` (and `history-events`), one with `onRead`
 * or `onWritten` its `storage` (and `storage-events`). Starting a timer, sending a request, or using history or
 * storage without a matching callback throws.
 */
export interface Plugin<S = undefined> {
  /**
   * The instance starts (before any event, and again in a replacement instance) with the route's settings. Throw to
   * refuse them: `wssgate check` fails with the error's message, `serve` does not start. Route-wide timers start here.
   */
  init?(settings: ReadonlyMap<string, string>): void;

  /**
   * A client asks to upgrade. Without it every upgrade is accepted with an undefined state. When `request.restored`
   * is true the gateway replays this call into a fresh instance for a connection the old one knew.
   */
  onConnect?(conn: Connection, request: Request): Verdict<S>;

  /**
   * A complete message arrived: a string for text, bytes for binary. Returning a value other than undefined replaces
   * the connection's state (for a state that is a number or a string).
   */
  onMessage?(conn: Connection, state: S, message: Message): S | void;

  /** The connection is closed; its state is dropped when this returns. */
  onClose?(conn: Connection, state: S, close: CloseFrame): void;

  /** A timer fired; `timer.owner` is the connection it was started for (its state is in `connections`). */
  onTimer?(timer: Timer, connections: Connections<S>): void;

  /** A request was answered or failed; comes once per request sent, unless it was cancelled first. */
  onHttpResponse?(request: Sent, result: HttpResult, connections: Connections<S>): void;

  /**
   * The message of `history.append` request `request` is durable at `result.position` (publish it to the group now,
   * with its position), or was not appended. Comes once per request taken, unless its owner closed first.
   */
  onAppended?(request: StorageRequest, result: AppendResult, connections: Connections<S>): void;

  /** The answer to `history.read` request `request`; once per request taken, unless its owner closed first. */
  onHistory?(request: StorageRequest, result: HistoryResult, connections: Connections<S>): void;

  /** The answer to `storage.get` request `request`; once per request taken, unless its owner closed first. */
  onRead?(request: StorageRequest, result: ReadResult, connections: Connections<S>): void;

  /**
   * The answer to `storage.set` or `storage.remove` request `request`: the revision the write made. Once per request
   * taken, unless its owner closed first (the write happens all the same).
   */
  onWritten?(request: StorageRequest, result: WriteResult, connections: Connections<S>): void;
}

/** Types a plugin object (a plugin is a plain object; this only helps the compiler infer `S`). */
export function definePlugin<S>(plugin: Plugin<S>): Plugin<S> {
  return plugin;
}

/** What the component exports beyond `connection-events`, as wssgate-build and the mock host read it from a plugin. */
export interface Exports {
  lifecycle: boolean;
  timerEvents: boolean;
  httpEvents: boolean;
  /** `onAppended` or `onHistory`: imports `history`, exports `history-events`. */
  historyEvents: boolean;
  /** `onRead` or `onWritten`: imports `storage`, exports `storage-events`. */
  storageEvents: boolean;
}

/** Checks that `value` is a plugin (a default export gone wrong is the commonest mistake) and says what it exports. */
export function exportsOf(value: unknown): Exports {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(
      `a plugin module's default export must be the plugin object (export default definePlugin({ … })), not ${
        value === null ? "null" : typeof value
      }`,
    );
  }
  const callbacks = [
    "init",
    "onConnect",
    "onMessage",
    "onClose",
    "onTimer",
    "onHttpResponse",
    "onAppended",
    "onHistory",
    "onRead",
    "onWritten",
  ] as const;
  const record = value as Record<string, unknown>;
  for (const name of callbacks) {
    if (record[name] !== undefined && typeof record[name] !== "function") {
      throw new TypeError(`the plugin's ${name} must be a function, not ${typeof record[name]}`);
    }
  }
  if (!callbacks.some((name) => typeof record[name] === "function")) {
    throw new TypeError(
      `the default export has none of the plugin callbacks (${callbacks.join(", ")}): is it the plugin object?`,
    );
  }
  return {
    lifecycle: typeof record.init === "function",
    timerEvents: typeof record.onTimer === "function",
    httpEvents: typeof record.onHttpResponse === "function",
    historyEvents: typeof record.onAppended === "function" || typeof record.onHistory === "function",
    storageEvents: typeof record.onRead === "function" || typeof record.onWritten === "function",
  };
}
