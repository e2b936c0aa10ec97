// The gateway's glue (src/wasm.ts) against fake raw imports: ids cross as BigInts, refusals come back as `Refused`,
// verdicts and init's refusal take the shapes the component binding expects.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Refused, accept, defer, definePlugin, reject, timers } from "../src/index.ts";
import { exportPlugin, type RawImports } from "../src/wasm.ts";

/** Raw imports that record each call and refuse what `refuse` names, the way the binding throws a WIT error. */
function fakeImports(refuse: string | undefined) {
  const calls: unknown[][] = [];
  const record = (name: string, result?: (...args: unknown[]) => unknown) => (...args: unknown[]) => {
    calls.push([name, ...args]);
    if (refuse === name) throw Object.assign(new Error("refused"), { payload: "not-deferred" });
    return result?.(...args);
  };
  const host = new Proxy({}, { get: (_t, name: string) => record(name, () => (name === "connectionsOfUser" ? new BigUint64Array([5n]) : undefined)) });
  const timerCalls = { setTimer: record("setTimer", () => 77n), cancelTimer: record("cancelTimer", () => true) };
  return { calls, raw: { host, timers: timerCalls } as unknown as RawImports };
}

const request = { path: "/x", query: "", headers: [], remoteAddress: "127.0.0.1:1", restored: false };

test("ids cross as BigInts, messages as the WIT variants, and timers come back as string ids", () => {
  const { calls, raw } = fakeImports(undefined);
  let started = "";
  const plugin = definePlugin({
    onMessage(conn, _state, message) {
      conn.send(message);
      started = timers.after(5, conn).id;
    },
    onTimer() {},
  });
  const exported = exportPlugin(plugin, raw);
  const id = 18446744073709551615n;
  assert.deepEqual(exported.connectionEvents.onConnect(id, request), { tag: "accept" });
  exported.connectionEvents.onMessage(id, { tag: "binary", val: Uint8Array.from([1]) });
  assert.deepEqual(calls, [
    ["send", id, { tag: "binary", val: Uint8Array.from([1]) }],
    ["setTimer", 5n, false, id],
  ]);
  assert.equal(started, "77");
});

test("a refused raw call is thrown as Refused with the WIT name", () => {
  const { raw } = fakeImports("accept");
  let seen = "";
  const plugin = definePlugin({
    onConnect(conn) {
      try {
        conn.accept();
      } catch (err) {
        seen = err instanceof Refused ? err.refusal : "other";
      }
      return defer(undefined);
    },
  });
  assert.deepEqual(exportPlugin(plugin, raw).connectionEvents.onConnect(1n, request), { tag: "defer" });
  assert.equal(seen, "not-deferred");
});

test("a rejection keeps a u16 status, and anything else becomes 500", () => {
  const { raw } = fakeImports(undefined);
  const exported = exportPlugin(definePlugin({ onConnect: (_c, r) => reject(r.query === "big" ? 70000 : 401, "no") }), raw);
  assert.deepEqual(exported.connectionEvents.onConnect(1n, request), { tag: "reject", val: { status: 401, body: "no" } });
  assert.deepEqual(exported.connectionEvents.onConnect(2n, { ...request, query: "big" }), {
    tag: "reject",
    val: { status: 500, body: "no" },
  });
});

test("init's refusal is thrown as the binding's error payload, and an uncaught exception is logged then rethrown", () => {
  const { calls, raw } = fakeImports(undefined);
  const exported = exportPlugin(
    definePlugin({
      init: () => {
        throw new Error("bad settings");
      },
      onConnect: () => accept(undefined),
      onMessage: () => {
        throw new Error("boom");
      },
    }),
    raw,
  );
  assert.throws(() => exported.lifecycle.init([]), (err: unknown) => (err as { payload: string }).payload === "bad settings");
  exported.connectionEvents.onConnect(3n, request);
  assert.throws(() => exported.connectionEvents.onMessage(3n, { tag: "text", val: "x" }), /boom/);
  const logged = calls.find(([name]) => name === "log");
  assert.equal(logged?.[1], "error");
  assert.match(String(logged?.[2]), /^uncaught exception in on-message: boom/);
});

test("a plugin without onTimer that starts a timer is told to define it", () => {
  const { raw } = fakeImports(undefined);
  const exported = exportPlugin(definePlugin({ onMessage: () => void timers.after(5) }), { host: raw.host });
  exported.connectionEvents.onConnect(4n, request);
  assert.throws(() => exported.connectionEvents.onMessage(4n, { tag: "text", val: "x" }), /defines no onTimer/);
});
