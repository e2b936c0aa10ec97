// What arrives with an event: a message, an upgrade request, a close frame, a connection's details.

/** One complete WebSocket data message: text as a string, binary as bytes. */
export type Message = string | Uint8Array;

/** The client's upgrade request, as on-connect receives it. */
export interface Request {
  /** The path without the query, e.g. `/chat`. */
  readonly path: string;
  /** The raw query without the leading `?`; empty when there is none. */
  readonly query: string;
  /** Headers in the order the client sent them; names are lower-case. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The client's `ip:port` (the real client's, when a trusted proxy said so). */
  readonly remoteAddress: string;
  /** The subprotocol the gateway negotiated from the route's list, if any. */
  readonly subprotocol?: string;
  /**
   * True when the gateway replays on-connect into a fresh instance (after the old one failed) for a connection the
   * old one knew: the plugin rebuilds its state. For a connection already open, accept and defer both keep it open
   * and a rejection closes it with 1008.
   */
  readonly restored: boolean;
}

/** How a connection ended: `code` is 1006 when the peer vanished without a close frame or it never opened. */
export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

/** What the gateway knows of a connection (`conn.info()`). */
export interface ConnectionInfo {
  readonly path: string;
  readonly query: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly remoteAddress: string;
  readonly subprotocol?: string;
  /** When the upgrade request arrived, in milliseconds since the Unix epoch. */
  readonly connectedAtMs: number;
}

/** The first value of header `name` (case-insensitive) in `headers`. */
export function header(headers: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

/** The value of `key` in a `k=v&k=v` query, decoded; undefined when it is absent. */
export function queryParam(query: string, key: string): string | undefined {
  return new URLSearchParams(query).get(key) ?? undefined;
}

/** How many bytes a message is on the wire (UTF-8 for text). */
export function byteLength(message: Message): number {
  return typeof message === "string" ? new TextEncoder().encode(message).length : message.length;
}
