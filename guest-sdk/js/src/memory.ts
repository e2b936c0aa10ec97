// What history and storage (contract 1.2) share: the handle of a request, why one the gateway took failed, and the
// checks of the numbers a plugin hands them. Both are a route's memory, kept past a restart and across nodes, and
// both answer the same way: a call returns at once with a `StorageRequest`, and exactly one event follows with the
// answer, unless the request is cancelled first (its owner connection closes, or the instance that made it is
// replaced or ends; one a reload retired still gets its answers). Cancelling drops only the event: a write the store took still happens.

import type { Connection } from "./connection.ts";

/** A history or storage request the gateway took; an equal one (same `id`) reaches its event. */
export class StorageRequest {
  /** The gateway-wide request id, as a decimal string (the contract's u64). */
  readonly id: string;
  /** The connection the request was made for: its event is dropped if that connection closes first. */
  readonly owner: Connection | undefined;

  constructor(id: string, owner: Connection | undefined) {
    this.id = id;
    this.owner = owner;
  }

  equals(other: StorageRequest | undefined): boolean {
    return other !== undefined && other.id === this.id;
  }

  toJSON(): string {
    return this.id;
  }
}

/**
 * Why a request the gateway took failed (the WIT's `storage-error`); it arrives in the request's event.
 * - `conflict`: a write's `ifRevision` did not match; `revision` is the key's current one (0 when it does not exist);
 * - `quota-exceeded`: the write would pass one of the route's quotas (`max_bytes`, `max_keys`, `max_groups`):
 *   nothing was written;
 * - `unavailable`: the store could not answer (the broker is away or did not answer in time, or the data file
 *   failed); a write may or may not have happened when it stopped answering in the middle of it.
 */
export type StorageError =
  | { kind: "conflict"; revision: number }
  | { kind: "quota-exceeded" }
  | { kind: "unavailable"; detail: string };

/**
 * `value` as a count the contract's u64 carries exactly (offsets, revisions, milliseconds): a non-negative safe
 * integer, else a RangeError naming `what` (lowering anything else would trap, or round).
 */
export function count(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative integer, not ${value}`);
  }
  return value;
}
