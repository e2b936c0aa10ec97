// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-storage-types.d.ts" />
/// <reference path="./wssgate-plugin-storage.d.ts" />
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/storage-events@1.2.0' {
  /**
   * The answer to `get` request `request`.
   */
  export function onRead(request: StorageRequestId, owner: ConnectionId | undefined, answer: Result<StoredValue | undefined, StorageError>): void;
  /**
   * The answer to `set` or `remove` request `request`: the revision the write made.
   */
  export function onWritten(request: StorageRequestId, owner: ConnectionId | undefined, answer: Result<bigint, StorageError>): void;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type StorageRequestId = import('wssgate:plugin/storage-types@1.2.0').StorageRequestId;
  export type StorageError = import('wssgate:plugin/storage-types@1.2.0').StorageError;
  export type StoredValue = import('wssgate:plugin/storage@1.2.0').StoredValue;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
