// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-storage-types.d.ts" />
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/history@1.2.0' {
  /**
   * Appends `message` to the group's history; exactly one `on-appended` follows with its position. The group need
   * not have members. An `owner` ties the request to that connection (see `storage-types`).
   */
  export function append(group: string, message: Message, owner: ConnectionId | undefined): StorageRequestId;
  /**
   * Reads the group's history: with `since`, the messages after that position (at most `limit`, the oldest
   * first); without, the latest `limit` messages. `limit` is at least 1 (0 reads as 1) and at most the route's
   * `size`, and a page holds at most 4 MiB of messages (but always one): a page since a position then ends early,
   * and the latest page keeps the newest; ask again from its last offset for more. Exactly one `on-history`
   * follows.
   */
  export function read(group: string, since: Position | undefined, limit: number, owner: ConnectionId | undefined): StorageRequestId;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type Message = import('wssgate:plugin/types@1.2.0').Message;
  export type StorageRequestId = import('wssgate:plugin/storage-types@1.2.0').StorageRequestId;
  export type StorageRefusal = import('wssgate:plugin/storage-types@1.2.0').StorageRefusal;
  /**
   * Where a message sits in its group's history.
   */
  export interface Position {
    /**
     * 1 for the first message appended to the group in this epoch, then one more for each message appended:
     * consecutive, so a gap is visible.
     */
    offset: bigint,
    /**
     * Names the group's history stream. It changes when the stream starts again — the store's data was lost or
     * reset, or every message of the group expired — and offsets start again at 1: offsets of different epochs
     * say nothing about each other.
     */
    epoch: string,
  }
  /**
   * One message of a group's history.
   */
  export interface HistoryEntry {
    offset: bigint,
    message: Message,
    /**
     * When it was appended, in milliseconds since the Unix epoch (the appending node's clock).
     */
    appendedAtMs: bigint,
  }
  /**
   * A page of a group's history, oldest first.
   */
  export interface HistoryPage {
    /**
     * The group's current epoch (empty when the group has no history).
     */
    epoch: string,
    entries: Array<HistoryEntry>,
    /**
     * True when `entries` starts right after the position asked for (or is the latest page, when none was
     * given): nothing between them is missing. False when the position's epoch is not the group's current one
     * (also when the group has no history at all) or when retention (`size`, `ttl_secs`) removed messages after
     * it — the page then starts at the oldest message kept — and when its offset is past the group's last one
     * (the page is then empty).
     */
    complete: boolean,
  }
}
