// A handle to one client connection: what a plugin uses to answer it, close it, group it, and keep its session.

import { host } from "./host.ts";
import type { ConnectionInfo, Message } from "./message.ts";

/**
 * Names one connection for its whole life. `id` is the gateway-wide id as a decimal string (the contract's u64), so
 * it prints and survives `JSON.stringify`. The handle stays valid as a name after the connection closes: calls on a
 * closed connection throw `Refused` ("unknown-connection", or "closed" for a send) or do nothing.
 */
export class Connection {
  readonly id: string;

  constructor(id: string) {
    this.id = id;
  }

  /**
   * Queues a message (a string is a text message, bytes a binary one); it is written when the current event returns,
   * and for a deferred connection once it is accepted. Throws `Refused` "closed" when the connection is gone, and
   * "queue-full" when the client reads too slowly (the message is dropped and the gateway closes it with 1008).
   */
  send(message: Message): void {
    host().send(this.id, message);
  }

  /**
   * Starts the close handshake; on-close follows once it completes. A code a peer may not send (1005, 1006, 1015, or
   * one outside 1000–4999) becomes 1008; the reason is cut to 123 bytes. A connection whose upgrade has no answer yet
   * is refused instead (403; 500 for 1011, 503 for 1001).
   */
  close(code = 1000, reason = ""): void {
    host().close(this.id, code, reason);
  }

  /** Opens a connection whose on-connect deferred (101). Throws `Refused` "not-deferred" when it is not waiting. */
  accept(): void {
    host().accept(this.id);
  }

  /**
   * Answers a deferred connection's upgrade with an HTTP error (400 to 599, else 500; the body is cut to 1 KiB);
   * on-close follows. Throws `Refused` "not-deferred" when it is not waiting.
   */
  reject(status: number, body = ""): void {
    host().reject(this.id, status, body);
  }

  /**
   * Joins one of the route's groups (joining one it is in changes nothing). Throws `Refused` "unknown-connection",
   * "name-too-long" (past `max_name_bytes`) or "too-many-groups" (past `max_groups_per_connection`).
   */
  join(group: string): void {
    host().joinGroup(this.id, group);
  }

  leave(group: string): void {
    host().leaveGroup(this.id, group);
  }

  /** The groups this connection is in, sorted. */
  groups(): string[] {
    return host().groupsOf(this.id);
  }

  /** Binds the connection to user `uid` (replacing an earlier binding). Throws `Refused` like `join`. */
  bindUser(uid: string): void {
    host().bindUser(this.id, uid);
  }

  unbindUser(): void {
    host().unbindUser(this.id);
  }

  /**
   * Stores a value in the connection's session, which the gateway keeps across plugin restarts. Throws `Refused`
   * "unknown-connection", "name-too-long" (the key) or "too-large" (keys and values past 64 KiB; the old value stays).
   */
  sessionSet(key: string, value: string): void {
    host().sessionSet(this.id, key, value);
  }

  sessionGet(key: string): string | undefined {
    return host().sessionGet(this.id, key);
  }

  sessionRemove(key: string): void {
    host().sessionRemove(this.id, key);
  }

  /** The upgrade request and connect time; undefined once the connection is closed. */
  info(): ConnectionInfo | undefined {
    return host().connectionInfo(this.id);
  }

  /** Two handles are equal when they name the same connection. */
  equals(other: Connection | undefined): boolean {
    return other !== undefined && other.id === this.id;
  }

  toJSON(): string {
    return this.id;
  }

  toString(): string {
    return this.id;
  }
}
