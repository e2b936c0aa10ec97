// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
declare module 'wssgate:plugin/storage-types@1.2.0' {
  /**
   * Names one history or storage request; unique across the gateway.
   */
  export type StorageRequestId = bigint;
  /**
   * Why the gateway did not take a history or storage request. A refused request gets no event. When several
   * apply, the first in this order is given: `not-configured`, `too-large`, `invalid-name`, `not-now`,
   * `unknown-connection`, `too-many-pending`.
   * # Variants
   * 
   * ## `"not-configured"`
   * 
   * The route has no `[route.history]` table (for history calls) or no `[route.storage]` table (for storage
   * calls).
   * ## `"invalid-name"`
   * 
   * The group name is empty or longer than `max_name_bytes`, or the key is empty or longer than the route's
   * `max_key_bytes`.
   * ## `"too-large"`
   * 
   * The message is larger than the route's history `max_message_bytes`, or the value larger than its storage
   * `max_value_bytes`.
   * ## `"too-many-pending"`
   * 
   * The instance already has `max_storage_requests_per_instance` requests waiting for their events, or (for a
   * `read`) 16 history reads: each answer is a page held by the host until the plugin takes it.
   * ## `"unknown-connection"`
   * 
   * The owner is not a connection (open or deferred) of this route served by this instance.
   * ## `"not-now"`
   * 
   * Requests cannot be made from `init`.
   */
  export type StorageRefusal = 'not-configured' | 'invalid-name' | 'too-large' | 'too-many-pending' | 'unknown-connection' | 'not-now';
  /**
   * Why a request the gateway took failed; it arrives in the request's event.
   */
  export type StorageError = StorageErrorConflict | StorageErrorQuotaExceeded | StorageErrorUnavailable;
  /**
   * A write's `if-revision` did not match: the key's current revision (0 when the key does not exist).
   */
  export interface StorageErrorConflict {
    tag: 'conflict',
    val: bigint,
  }
  /**
   * The write would pass one of the route's quotas (`max_bytes`, `max_keys`, `max_groups`): nothing was
   * written.
   */
  export interface StorageErrorQuotaExceeded {
    tag: 'quota-exceeded',
  }
  /**
   * The store could not answer: the broker is away or did not answer in time, or the data file failed. A write
   * may or may not have happened when the store stopped answering in the middle of it.
   */
  export interface StorageErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
