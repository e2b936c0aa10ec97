// Every connection's state, for the events that are not about one connection (timers, HTTP answers). The SDK owns the
// table: on-connect's verdict fills it, on-close empties it, so no entry outlives its connection.

import { Connection } from "./connection.ts";

export class Connections<S> {
  readonly #states = new Map<string, S>();

  /** The state of `conn`, if it is one of this instance's connections (open, or waiting for its answer). */
  get(conn: Connection | string): S | undefined {
    return this.#states.get(typeof conn === "string" ? conn : conn.id);
  }

  /** Whether the SDK holds state for `conn` (a state may itself be undefined). */
  has(conn: Connection | string): boolean {
    return this.#states.has(typeof conn === "string" ? conn : conn.id);
  }

  /**
   * Replaces the state of a connection the SDK holds state for (a state that is a number or a string cannot be
   * changed in place); false for any other connection.
   */
  set(conn: Connection | string, state: S): boolean {
    const id = typeof conn === "string" ? conn : conn.id;
    if (!this.#states.has(id)) return false;
    this.#states.set(id, state);
    return true;
  }

  /** Every connection with its state, in the order they connected. */
  *entries(): IterableIterator<[Connection, S]> {
    for (const [id, state] of this.#states) yield [new Connection(id), state];
  }

  get size(): number {
    return this.#states.size;
  }

  /** @internal The runtime's side: the table changes only with on-connect and on-close. */
  static insert<S>(table: Connections<S>, id: string, state: S): void {
    table.#states.set(id, state);
  }

  /** @internal */
  static remove<S>(table: Connections<S>, id: string): { state: S } | undefined {
    if (!table.#states.has(id)) return undefined;
    const state = table.#states.get(id) as S;
    table.#states.delete(id);
    return { state };
  }
}
