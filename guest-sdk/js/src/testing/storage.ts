// The mock's key-value storage: the route's `[route.storage]` kept in memory with the contract's rules (and the
// gateway's store's, which the Rust SDK's mock follows too): one revision counter for the route's writes (never 0),
// compare-and-set on it (0: only when the key does not exist), time to live on the mock's clock, and the `max_keys`
// and `max_bytes` quotas.

import { StoredValue, type WriteResult } from "../storage.ts";

/** A route's `[route.storage]` table, as a test turns it on with `MockHost.withStorage`; each key defaults as there. */
export interface StorageConfig {
  /** The longest key, in bytes of UTF-8 (default 256); an empty or longer one is refused with "invalid-name". */
  maxKeyBytes: number;
  /** The largest value (default 64 KiB); a larger one is refused with "too-large". */
  maxValueBytes: number;
  /** Keys at once (default 100 000); a write that would create one more fails with quota-exceeded. */
  maxKeys: number;
  /** Bytes of keys and values together (default 256 MiB); a write past it fails with quota-exceeded. */
  maxBytes: number;
}

export const DEFAULT_STORAGE: StorageConfig = {
  maxKeyBytes: 256,
  maxValueBytes: 64 * 1024,
  maxKeys: 100_000,
  maxBytes: 256 * 1024 * 1024,
};

/** What a write does to its key: sets it (with its expiry time, if any), or removes it. */
export type Write = { value: Uint8Array; ttlMs: number | undefined } | undefined;

const utf8 = (text: string): number => new TextEncoder().encode(text).length;

/** A value as a reader gets it: its own copy, so a plugin that changes it does not change the store. */
function copy(stored: StoredValue): StoredValue {
  return new StoredValue(stored.value.slice(), stored.revision, stored.expiresAtMs);
}

/** The route's keys. The store's, not the instance's: they outlive a restart. */
export class Keys {
  readonly #values = new Map<string, StoredValue>();
  /** The revision of the route's last write. */
  #revision = 0;

  /** Forgets the values that expired by `nowMs`: they read as absent, and no longer count against the quotas. */
  #expire(nowMs: number): void {
    for (const [key, stored] of this.#values) {
      if (stored.expiresAtMs !== undefined && stored.expiresAtMs <= nowMs) this.#values.delete(key);
    }
  }

  get(key: string, nowMs: number): StoredValue | undefined {
    this.#expire(nowMs);
    const stored = this.#values.get(key);
    return stored && copy(stored);
  }

  write(config: StorageConfig, key: string, write: Write, ifRevision: number | undefined, nowMs: number): WriteResult {
    this.#expire(nowMs);
    const old = this.#values.get(key);
    const current = old?.revision ?? 0;
    if (ifRevision !== undefined && ifRevision !== current) {
      return { ok: false, error: { kind: "conflict", revision: current } };
    }
    if (write !== undefined) {
      const keys = this.#values.size + (old === undefined ? 1 : 0);
      let bytes = 0;
      for (const [k, v] of this.#values) bytes += utf8(k) + v.value.length;
      const oldBytes = old === undefined ? 0 : utf8(key) + old.value.length;
      if (keys > config.maxKeys || bytes - oldBytes + utf8(key) + write.value.length > config.maxBytes) {
        return { ok: false, error: { kind: "quota-exceeded" } };
      }
    }
    // A removal is a write too: it gets a revision of its own, whether or not the key existed.
    this.#revision += 1;
    if (write === undefined) {
      this.#values.delete(key);
    } else {
      const expiresAtMs = write.ttlMs === undefined ? undefined : nowMs + write.ttlMs;
      this.#values.set(key, new StoredValue(write.value.slice(), this.#revision, expiresAtMs));
    }
    return { ok: true, revision: this.#revision };
  }
}
