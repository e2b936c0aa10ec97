// Group history (contract 1.2): a route with a `[route.history]` table keeps the last messages appended to each of
// its groups (the last `size`, for `ttl_secs`), so that a client that was away can ask what it missed. A plugin that
// uses it defines `onAppended` or `onHistory` (or both): wssgate-build then imports the contract's `history` and
// exports `history-events`, where the answers arrive.
//
// Appending does not deliver. The plugin publishes the message to the group from `onAppended`, once it is durable
// and its position is known, so that the position a member sees is never reused for another message after a crash.
// Offsets are consecutive within an epoch, so a gap shows; when the store starts a group's stream again (its data was
// lost, or every message expired) the epoch changes and offsets start again at 1.

import type { Connection } from "./connection.ts";
import { host } from "./host.ts";
import { count, type StorageError, StorageRequest } from "./memory.ts";
import type { Message } from "./message.ts";

/** Where a message sits in its group's history. A client may keep it (it survives `JSON.stringify`) and send it back. */
export interface Position {
  /**
   * 1 for the first message appended to the group in this epoch, then one more for each message appended:
   * consecutive, so a gap is visible.
   */
  readonly offset: number;
  /** Names the group's history stream; offsets of different epochs say nothing about each other. */
  readonly epoch: string;
}

/** One message of a group's history. */
export interface HistoryEntry {
  readonly offset: number;
  /** As appended: a string for text, bytes for binary. */
  readonly message: Message;
  /** When it was appended, in milliseconds since the Unix epoch (the appending node's clock). */
  readonly appendedAtMs: number;
}

/** A page of a group's history, oldest first. */
export interface HistoryPage {
  /** The group's current epoch (empty when the group has no history). */
  readonly epoch: string;
  readonly entries: readonly HistoryEntry[];
  /**
   * True when `entries` starts right after the position asked for (or is the latest page, when none was given):
   * nothing between them is missing. False when the position's epoch is not the group's current one (also when the
   * group has no history), when its offset is past the group's last one, or when retention removed messages after
   * it: the page then starts at the oldest message kept.
   */
  readonly complete: boolean;
}

/** What `onAppended` receives: the message's position, or why it was not appended. */
export type AppendResult = { ok: true; position: Position } | { ok: false; error: StorageError };

/** What `onHistory` receives: the page, or why there is none. */
export type HistoryResult = { ok: true; page: HistoryPage } | { ok: false; error: StorageError };

/** What `read` reads. */
export interface ReadOptions {
  /** The messages after this position; without it, the latest ones. */
  since?: Position;
  /** At most this many (0 reads as 1; more than the route's `size` reads `size`). */
  limit: number;
  /** The connection the read is for: its answer is dropped if that connection closes first. */
  owner?: Connection;
}

/**
 * Appends `message` (a string for text, bytes for binary, like `conn.send` takes) to `group`'s history; the group
 * need not have members. Exactly one `onAppended` follows, with the message's position. With an `owner`, the event
 * is dropped if that connection closes first (the message is appended all the same).
 *
 * Throws `Refused` (and no event follows) with "not-configured" when the route has no `[route.history]`,
 * "too-large" for a message past `max_message_bytes`, "invalid-name" for an empty group name or one past
 * `max_name_bytes`, "not-now" from `init`, "unknown-connection" for an owner this instance does not serve, and
 * "too-many-pending" when `max_storage_requests_per_instance` requests wait for their events.
 */
export function append(group: string, message: Message, owner?: Connection): StorageRequest {
  const id = host().historyAppend(group, message, owner?.id);
  return new StorageRequest(id, owner);
}

/**
 * Reads `group`'s history: with `since`, the messages after that position (at most `limit`, oldest first); without,
 * the latest `limit` messages. A page holds at most 4 MiB of message bytes, but always one message: a page since a
 * position then ends early and the latest page keeps the newest, so read again from the last offset for more.
 * Exactly one `onHistory` follows. Refused like `append`.
 */
export function read(group: string, options: ReadOptions): StorageRequest {
  const { since, owner } = options;
  if (!Number.isFinite(options.limit) || options.limit < 0) {
    throw new RangeError(`a read's limit must be a non-negative number, not ${options.limit}`);
  }
  // The contract's u32; the gateway caps it at the route's `size` anyway.
  const limit = Math.min(Math.floor(options.limit), 0xffffffff);
  const position = since && { offset: count(since.offset, "a position's offset"), epoch: String(since.epoch) };
  const id = host().historyRead(group, position, limit, owner?.id);
  return new StorageRequest(id, owner);
}
