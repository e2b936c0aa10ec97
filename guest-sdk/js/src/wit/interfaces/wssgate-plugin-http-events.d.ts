// Generated from wit/plugin.wit (world plugin-full) by `jco guest-types` (@bytecodealliance/jco 1.15.1, the
// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script.
/// <reference path="./wssgate-plugin-http.d.ts" />
/// <reference path="./wssgate-plugin-types.d.ts" />
declare module 'wssgate:plugin/http-events@1.2.0' {
  /**
   * The request `request`, sent for `owner` (if any), was answered or failed.
   */
  export function onHttpResponse(request: RequestId, owner: ConnectionId | undefined, response: Result<HttpResponse, HttpError>): void;
  export type ConnectionId = import('wssgate:plugin/types@1.2.0').ConnectionId;
  export type RequestId = import('wssgate:plugin/http@1.2.0').RequestId;
  export type HttpResponse = import('wssgate:plugin/http@1.2.0').HttpResponse;
  export type HttpError = import('wssgate:plugin/http@1.2.0').HttpError;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
