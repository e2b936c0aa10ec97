// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-history.d.ts" />
/// <reference path="./wssgate-plugin-storage-types.d.ts" />
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/history-events@1.2.0' {
  /**
   * The message of `append` request `request` is durable at `position` (or was not appended).
   */
  export function onAppended(request: StorageRequestId, owner: ConnectionId | undefined, answer: Result<Position, StorageError>): void;
  /**
   * The answer to `read` request `request`.
   */
  export function onHistory(request: StorageRequestId, owner: ConnectionId | undefined, answer: Result<HistoryPage, StorageError>): void;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type StorageRequestId = import('wssgate:plugin/storage-types@1.2.0').StorageRequestId;
  export type StorageError = import('wssgate:plugin/storage-types@1.2.0').StorageError;
  export type Position = import('wssgate:plugin/history@1.2.0').Position;
  export type HistoryPage = import('wssgate:plugin/history@1.2.0').HistoryPage;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
