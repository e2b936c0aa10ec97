// Shared plugin scenarios (tests/scenarios/README.md defines the format): a script of what clients do and what they
// must see, run here against the mock host and by the repository's end-to-end tests against the real gateway. A
// scenario that passes on one and fails on the other is a difference between the mock and the gateway: a bug.

import { readFileSync } from "node:fs";
import type { Connection } from "../connection.ts";
import type { Message } from "../message.ts";
import type { Plugin } from "../plugin.ts";
import { MockHost, request } from "./index.ts";

/** The path scenarios connect to. */
export const SCENARIO_PATH = "/scenario";

export type Step =
  | { connect: number; query: string; expect: number }
  | { send: number; text: string }
  | { send: number; binary: number[] }
  | { receive: number; text: string }
  | { receive: number; binary: number[] }
  | { wait_ms: number }
  | { close: number; code: number }
  | { closed: number; code: number };

export interface Scenario {
  name: string;
  settings?: Record<string, string>;
  accept_timeout_ms?: number;
  steps: Step[];
}

/** The scenarios of a scenario file (`{ "scenarios": [ … ] }`). */
export function loadScenarios(path: string | URL): Scenario[] {
  const parsed = JSON.parse(readFileSync(path, "utf8")) as { scenarios?: Scenario[] };
  if (!Array.isArray(parsed.scenarios)) throw new Error(`${path} has no "scenarios" list`);
  return parsed.scenarios;
}

function describe(message: Message | undefined): string {
  if (message === undefined) return "nothing";
  return typeof message === "string" ? JSON.stringify(message) : `binary [${[...message].join(", ")}]`;
}

function same(a: Message | undefined, b: Message): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return a !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Runs `scenario` against a fresh mock of `plugin` (a plugin object, or a function making one), throwing at the
 * first step that does not go as written.
 */
export function runScenario<S>(plugin: Plugin<S> | (() => Plugin<S>), scenario: Scenario): void {
  const host = new MockHost(plugin).withAcceptTimeout(scenario.accept_timeout_ms ?? 10_000);
  for (const [key, value] of Object.entries(scenario.settings ?? {})) host.withSetting(key, value);
  const clients = new Map<number, Connection>();
  const inbox = new Map<number, Message[]>();
  scenario.steps.forEach((step, n) => {
    const where = `${scenario.name}, step ${n}`;
    const conn = (client: number): Connection => {
      const found = clients.get(client);
      if (found === undefined) throw new Error(`${where}: client ${client} never connected`);
      return found;
    };
    if ("connect" in step) {
      const upgrade = host.connect(request(SCENARIO_PATH, { query: step.query }));
      let got: number;
      if (upgrade.kind === "rejected") {
        got = upgrade.rejected().status;
      } else {
        const connection = upgrade.connection as Connection;
        clients.set(step.connect, connection);
        got = upgrade.kind === "accepted" ? 101 : awaitAnswer(host, connection, scenario.accept_timeout_ms ?? 10_000);
      }
      if (got !== step.expect) throw new Error(`${where}: client ${step.connect}'s upgrade got ${got}, expected ${step.expect}`);
    } else if ("send" in step) {
      host.message(conn(step.send), "text" in step ? step.text : Uint8Array.from(step.binary));
    } else if ("receive" in step) {
      const queue = inbox.get(step.receive) ?? [];
      inbox.set(step.receive, queue);
      queue.push(...host.takeSent(conn(step.receive)));
      const expected: Message = "text" in step ? step.text : Uint8Array.from(step.binary);
      const next = queue.shift();
      if (!same(next, expected)) {
        throw new Error(`${where}: client ${step.receive} received ${describe(next)}, expected ${describe(expected)}`);
      }
    } else if ("wait_ms" in step) {
      host.advance(step.wait_ms);
    } else if ("close" in step) {
      host.clientClose(conn(step.close), step.code, "");
    } else if ("closed" in step) {
      const code = host.closed(conn(step.closed))?.code;
      if (code !== step.code) throw new Error(`${where}: client ${step.closed} was closed with ${code}, expected ${step.code}`);
    } else {
      throw new Error(`${where}: unknown step ${JSON.stringify(step)}`);
    }
  });
}

/** Lets the clock run, 1 ms at a time, until a deferred upgrade is answered (by the plugin or the accept timeout). */
function awaitAnswer<S>(host: MockHost<S>, conn: Connection, acceptTimeoutMs: number): number {
  for (let ms = 0; ms <= acceptTimeoutMs + 1; ms += 1) {
    const status = host.status(conn);
    if (status?.kind === "waiting") host.advance(1);
    else if (status?.kind === "rejected") return status.rejection.status;
    // Open, or opened and already closed again.
    else return 101;
  }
  throw new Error(`the deferred upgrade of connection ${conn.id} was never answered`);
}
