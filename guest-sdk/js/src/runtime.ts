// One plugin instance as the SDK runs it: the plugin object and its connections' state, and the rules that tie the
// state to the events. The gateway's glue (`wasm.ts`) and the mock host run the same code, so what a unit test shows
// is what the gateway does.

import { Connection } from "./connection.ts";
import { Connections } from "./connections.ts";
import type { AppendResult, HistoryResult } from "./history.ts";
import type { HttpResult, Sent } from "./http.ts";
import type { StorageRequest } from "./memory.ts";
import type { CloseFrame, Message, Request } from "./message.ts";
import type { Plugin } from "./plugin.ts";
import type { ReadResult, WriteResult } from "./storage.ts";
import type { Timer } from "./timers.ts";

/** How on-connect answered, without the state (which the runtime keeps). */
export type Answer = { kind: "accept" } | { kind: "defer" } | { kind: "reject"; status: number; body: string };

export class Runtime<S> {
  readonly plugin: Plugin<S>;
  readonly connections = new Connections<S>();

  constructor(plugin: Plugin<S>) {
    this.plugin = plugin;
  }

  /** Runs `init`; a refusal is its error's message. */
  init(settings: ReadonlyMap<string, string>): string | undefined {
    try {
      this.plugin.init?.(settings);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Runs on-connect; keeps the state it returns unless it rejected. */
  connect(id: string, request: Request): Answer {
    const onConnect = this.plugin.onConnect;
    const verdict = onConnect ? onConnect.call(this.plugin, new Connection(id), request) : { kind: "accept" as const, state: undefined as S };
    switch (verdict?.kind) {
      case "accept":
      case "defer":
        Connections.insert(this.connections, id, verdict.state);
        return { kind: verdict.kind };
      case "reject":
        return { kind: "reject", status: verdict.status, body: String(verdict.body ?? "") };
      default:
        throw new TypeError("onConnect must return accept(state), defer(state) or reject(status, body)");
    }
  }

  /** Runs on-message with the connection's state; a connection without state (the host sends none) is ignored. */
  message(id: string, message: Message): void {
    if (!this.connections.has(id)) return;
    const state = this.connections.get(id) as S;
    const next = this.plugin.onMessage?.(new Connection(id), state, message);
    // An async onMessage returns a promise, which is not a state (and is not awaited: see the README).
    if (next !== undefined && !(next instanceof Promise)) this.connections.set(id, next);
  }

  /** Runs on-close with the connection's state, which is dropped first (even if on-close throws). */
  close(id: string, close: CloseFrame): void {
    const held = Connections.remove(this.connections, id);
    if (held !== undefined) this.plugin.onClose?.(new Connection(id), held.state, close);
  }

  timer(timer: Timer): void {
    this.plugin.onTimer?.(timer, this.connections);
  }

  response(request: Sent, result: HttpResult): void {
    this.plugin.onHttpResponse?.(request, result, this.connections);
  }

  appended(request: StorageRequest, result: AppendResult): void {
    this.plugin.onAppended?.(request, result, this.connections);
  }

  history(request: StorageRequest, result: HistoryResult): void {
    this.plugin.onHistory?.(request, result, this.connections);
  }

  read(request: StorageRequest, result: ReadResult): void {
    this.plugin.onRead?.(request, result, this.connections);
  }

  written(request: StorageRequest, result: WriteResult): void {
    this.plugin.onWritten?.(request, result, this.connections);
  }
}
