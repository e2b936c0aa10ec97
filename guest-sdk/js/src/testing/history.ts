// The mock's group history: the route's `[route.history]` kept in memory with the contract's rules (and the gateway's
// store's, which the Rust SDK's mock follows too): offsets consecutive from 1 in each epoch, a new epoch when a
// group's stream starts again, retention by `size` and `ttl_secs` on the mock's clock, the `max_groups` and
// `max_bytes` quotas, and `complete` and the 4 MiB page as `history.read` defines them.

import type { AppendResult, HistoryEntry, HistoryPage, Position } from "../history.ts";
import { byteLength, type Message } from "../message.ts";

/** A route's `[route.history]` table, as a test turns it on with `MockHost.withHistory`; each key defaults as there. */
export interface HistoryConfig {
  /** Messages kept per group: appending one more drops the oldest (`size`, default 100). */
  size: number;
  /** How long a message is kept, in seconds (`ttl_secs`, default 86 400). */
  ttlSecs: number;
  /** The largest message `append` takes (default 64 KiB); a larger one is refused with "too-large". */
  maxMessageBytes: number;
  /** Groups with history at once (default 10 000); an append that would start one more fails with quota-exceeded. */
  maxGroups: number;
  /** Bytes of messages the route's history holds (default 256 MiB); an append past it fails with quota-exceeded. */
  maxBytes: number;
}

export const DEFAULT_HISTORY: HistoryConfig = {
  size: 100,
  ttlSecs: 86_400,
  maxMessageBytes: 64 * 1024,
  maxGroups: 10_000,
  maxBytes: 256 * 1024 * 1024,
};

/** The most message bytes one page holds, as in the gateway (the WIT's `history.read`): 4 MiB. */
const MAX_PAGE_BYTES = 4 * 1024 * 1024;

/** One group's stream: its epoch, the next offset, and the messages kept, oldest first. */
interface Stream {
  epoch: string;
  next: number;
  entries: HistoryEntry[];
}

function copy(message: Message): Message {
  return typeof message === "string" ? message : message.slice();
}

/** An entry as a reader gets it: its own copy, so a plugin that changes it does not change the store. */
function copyEntry(entry: HistoryEntry): HistoryEntry {
  return { offset: entry.offset, message: copy(entry.message), appendedAtMs: entry.appendedAtMs };
}

/** Every group's stream. The store's, not the instance's: it outlives a restart. */
export class Histories {
  readonly #groups = new Map<string, Stream>();
  /** How many epochs were started: each new one is named after the count, so none repeats. */
  #epochs = 0;

  /** Loses every group's stream, as a store whose data was lost: each starts a new epoch with its next append. */
  clear(): void {
    this.#groups.clear();
  }

  /** Drops the messages that outlived the ttl at `nowMs`, and the groups left without any. */
  #expire(config: HistoryConfig, nowMs: number): void {
    const ttlMs = config.ttlSecs * 1000;
    for (const [group, stream] of this.#groups) {
      const kept = stream.entries.findIndex((e) => e.appendedAtMs + ttlMs > nowMs);
      if (kept < 0) this.#groups.delete(group);
      else stream.entries.splice(0, kept);
    }
  }

  #bytes(): number {
    let bytes = 0;
    for (const stream of this.#groups.values()) for (const e of stream.entries) bytes += byteLength(e.message);
    return bytes;
  }

  append(config: HistoryConfig, group: string, message: Message, nowMs: number): AppendResult {
    this.#expire(config, nowMs);
    const held = this.#groups.get(group)?.entries ?? [];
    if (held.length === 0 && this.#groups.size >= config.maxGroups) return { ok: false, error: { kind: "quota-exceeded" } };
    // What `size` will drop to make room, so that a full group still takes a message within `maxBytes`.
    const dropping = Math.max(0, held.length + 1 - config.size);
    const freed = held.slice(0, dropping).reduce((sum, e) => sum + byteLength(e.message), 0);
    if (this.#bytes() - freed + byteLength(message) > config.maxBytes) {
      return { ok: false, error: { kind: "quota-exceeded" } };
    }
    let stream = this.#groups.get(group);
    if (stream === undefined) {
      this.#epochs += 1;
      stream = { epoch: `mock-epoch-${this.#epochs}`, next: 1, entries: [] };
      this.#groups.set(group, stream);
    }
    stream.entries.splice(0, dropping);
    const offset = stream.next;
    stream.next += 1;
    stream.entries.push({ offset, message: copy(message), appendedAtMs: nowMs });
    return { ok: true, position: { offset, epoch: stream.epoch } };
  }

  read(config: HistoryConfig, group: string, since: Position | undefined, limit: number, nowMs: number): HistoryPage {
    this.#expire(config, nowMs);
    const count = Math.min(Math.max(limit, 1), config.size);
    const stream = this.#groups.get(group);
    if (stream === undefined) {
      // No history: complete only as "the latest page"; a position names a stream that is gone.
      return { epoch: "", entries: [], complete: since === undefined };
    }
    const next = stream.next;
    const oldest = stream.entries[0]?.offset ?? next;
    let start: number;
    let complete: boolean;
    if (since === undefined) [start, complete] = [Math.max(oldest, next - count), true];
    else if (since.epoch !== stream.epoch) [start, complete] = [oldest, false];
    // A position past the end is not one of this stream's.
    else if (since.offset >= next) [start, complete] = [next, false];
    else [start, complete] = [Math.max(since.offset + 1, oldest), since.offset + 1 >= oldest];
    const entries: HistoryEntry[] = [];
    let held = 0;
    for (const entry of stream.entries.filter((e) => e.offset >= start).slice(0, count)) {
      // A page since a position ends at the page's byte budget (always one message).
      const size = byteLength(entry.message);
      if (since !== undefined && entries.length > 0 && held + size > MAX_PAGE_BYTES) break;
      held += size;
      entries.push(entry);
    }
    // The latest page keeps the newest that fit.
    let from = 0;
    while (held > MAX_PAGE_BYTES && entries.length - from > 1) {
      held -= byteLength(entries[from].message);
      from += 1;
    }
    return { epoch: stream.epoch, entries: entries.slice(from).map(copyEntry), complete };
  }
}
