// Key-value storage (contract 1.2): a route with a `[route.storage]` table has keys of its own, kept past a restart
// and seen alike by every node, bounded by the table's `max_key_bytes`, `max_value_bytes`, `max_keys` and
// `max_bytes`. A plugin that uses it defines `onRead` or `onWritten` (or both): wssgate-build then imports the
// contract's `storage` and exports `storage-events`, where the answers arrive.
//
// Every write to the route's storage gets a revision larger than any before it (never 0), so a reader can tell two
// values of one key apart and a writer can make its write depend on what it read (`ifRevision`). Answers are exact: a
// read sees every write acknowledged before it, on any node.

import type { Connection } from "./connection.ts";
import { host } from "./host.ts";
import { count, type StorageError, StorageRequest } from "./memory.ts";

/** A key's value, as the last acknowledged write left it. */
export class StoredValue {
  readonly value: Uint8Array;
  /** Grows with every write to the route's storage (so two writes of one key never share one); never 0. */
  readonly revision: number;
  /** When the value expires, in milliseconds since the Unix epoch, if it was set with a time to live. */
  readonly expiresAtMs: number | undefined;

  constructor(value: string | Uint8Array, revision: number, expiresAtMs?: number) {
    this.value = typeof value === "string" ? new TextEncoder().encode(value) : value;
    this.revision = revision;
    this.expiresAtMs = expiresAtMs;
  }

  /** The value as text (invalid UTF-8 becomes U+FFFD). */
  text(): string {
    return new TextDecoder().decode(this.value);
  }
}

/** What `onRead` receives: the value (undefined when the key does not exist or has expired), or why there is none. */
export type ReadResult = { ok: true; value: StoredValue | undefined } | { ok: false; error: StorageError };

/** What `onWritten` receives: the revision the write made, or why it was not made. */
export type WriteResult = { ok: true; revision: number } | { ok: false; error: StorageError };

/** How `set` writes. */
export interface SetOptions {
  /** The value expires this many milliseconds after the write (0: at once); without it, it never does. */
  ttlMs?: number;
  /**
   * Compare-and-set: write only when the key's current revision is this one (0: only when the key does not exist);
   * otherwise the event carries `{ kind: "conflict", revision }` with the current one.
   */
  ifRevision?: number;
  /** The connection the write is for: its answer is dropped if that connection closes first (the write is kept). */
  owner?: Connection;
}

/** How `remove` deletes. */
export interface RemoveOptions {
  /** As for `set`. */
  ifRevision?: number;
  owner?: Connection;
}

/**
 * Reads `key`; one `onRead` follows, with an undefined value when the key does not exist or has expired. With an
 * `owner`, the event is dropped if that connection closes first.
 *
 * Throws `Refused` (and no event follows) with "not-configured" when the route has no `[route.storage]`,
 * "invalid-name" for an empty key or one past `max_key_bytes`, "not-now" from `init`, "unknown-connection" for an
 * owner this instance does not serve, and "too-many-pending" when `max_storage_requests_per_instance` requests wait.
 */
export function get(key: string, owner?: Connection): StorageRequest {
  const id = host().storageGet(key, owner?.id);
  return new StorageRequest(id, owner);
}

/**
 * Writes `key` (a string is stored as UTF-8); one `onWritten` follows once the write is durable, with the revision it
 * made. Refused like `get`, and with "too-large" for a value past `max_value_bytes`.
 */
export function set(key: string, value: string | Uint8Array, options: SetOptions = {}): StorageRequest {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  const ttlMs = options.ttlMs === undefined ? undefined : milliseconds(options.ttlMs);
  const ifRevision = options.ifRevision === undefined ? undefined : count(options.ifRevision, "ifRevision");
  const id = host().storageSet(key, bytes, ttlMs, ifRevision, options.owner?.id);
  return new StorageRequest(id, options.owner);
}

/**
 * Deletes `key`; deleting a key that does not exist succeeds, and like every write it takes a new revision. One
 * `onWritten` follows once the deletion is durable. Refused like `get`.
 */
export function remove(key: string, options: RemoveOptions = {}): StorageRequest {
  const ifRevision = options.ifRevision === undefined ? undefined : count(options.ifRevision, "ifRevision");
  const id = host().storageRemove(key, ifRevision, options.owner?.id);
  return new StorageRequest(id, options.owner);
}

/** A time to live as whole milliseconds (a fraction is dropped). */
function milliseconds(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs < 0) {
    throw new RangeError(`a time to live must be a finite number of milliseconds, not ${ttlMs}`);
  }
  return Math.min(Math.floor(ttlMs), Number.MAX_SAFE_INTEGER);
}
