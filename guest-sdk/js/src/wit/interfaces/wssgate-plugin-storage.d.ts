// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-storage-types.d.ts" />
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/storage@1.2.0' {
  /**
   * Reads a key; one `on-read` follows (with none when the key does not exist or has expired).
   */
  export function get(key: string, owner: ConnectionId | undefined): StorageRequestId;
  /**
   * Writes a key, expiring after `ttl-ms` when given (0: expired at once). An expired key reads as absent at
   * once, and counts against `max_keys` and `max_bytes` until the gateway removes it: on one node within about a
   * second; with JetStream when it is next read or written.
   * With `if-revision`, only when the key's current revision is
   * that one (0: only when the key does not exist) — compare-and-set; otherwise the event carries `conflict`. One
   * `on-written` follows, once the write is durable.
   */
  export function set(key: string, value: Uint8Array, ttlMs: bigint | undefined, ifRevision: bigint | undefined, owner: ConnectionId | undefined): StorageRequestId;
  /**
   * Deletes a key (`if-revision` as for `set`); deleting a key that does not exist succeeds, and like every write
   * it takes a new revision. One `on-written` follows, once the deletion is durable.
   */
  export function remove(key: string, ifRevision: bigint | undefined, owner: ConnectionId | undefined): StorageRequestId;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type StorageRequestId = import('wssgate:plugin/storage-types@1.2.0').StorageRequestId;
  export type StorageRefusal = import('wssgate:plugin/storage-types@1.2.0').StorageRefusal;
  /**
   * A key's value, as the last acknowledged write left it.
   */
  export interface StoredValue {
    value: Uint8Array,
    /**
     * Grows with every write to the route's storage (so two writes of one key never share one); never 0.
     */
    revision: bigint,
    /**
     * When the value expires, in milliseconds since the Unix epoch, if it was set with a time to live.
     */
    expiresAtMs?: bigint,
  }
}
