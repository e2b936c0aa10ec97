// The gateway's glue (src/wasm.ts) against fake raw imports: ids cross as BigInts, refusals come back as `Refused`,
// verdicts and init's refusal take the shapes the component binding expects.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Refused,
  accept,
  defer,
  definePlugin,
  history,
  reject,
  storage,
  timers,
  type AppendResult,
  type HistoryResult,
  type ReadResult,
  type StorageRequest,
  type WriteResult,
} from "../src/index.ts";
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
  const historyCalls = { append: record("append", () => 2n ** 64n - 1n), read: record("read", () => 8n) };
  const storageCalls = { get: record("get", () => 9n), set: record("set", () => 10n), remove: record("remove", () => 11n) };
  return {
    calls,
    raw: { host, timers: timerCalls, history: historyCalls, storage: storageCalls } as unknown as RawImports,
  };
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

test("history and storage calls cross with BigInt ids and counts, and come back as string request ids", () => {
  const { calls, raw } = fakeImports(undefined);
  const made: StorageRequest[] = [];
  const plugin = definePlugin({
    onMessage(conn) {
      made.push(history.append("room", Uint8Array.from([1]), conn));
      made.push(history.read("room", { since: { offset: 41, epoch: "e1" }, limit: 5e9 }));
      made.push(storage.get("k", conn));
      made.push(storage.set("k", "vé", { ttlMs: 1500.7, ifRevision: 0 }));
      made.push(storage.remove("k", { ifRevision: 7, owner: conn }));
    },
    onAppended() {},
    onRead() {},
  });
  const exported = exportPlugin(plugin, raw);
  exported.connectionEvents.onConnect(3n, request);
  exported.connectionEvents.onMessage(3n, { tag: "text", val: "go" });
  assert.deepEqual(calls, [
    ["append", "room", { tag: "binary", val: Uint8Array.from([1]) }, 3n],
    ["read", "room", { offset: 41n, epoch: "e1" }, 0xffffffff, undefined],
    ["get", "k", 3n],
    ["set", "k", new TextEncoder().encode("vé"), 1500n, 0n, undefined],
    ["remove", "k", 7n, 3n],
  ]);
  assert.deepEqual(
    made.map((r) => [r.id, r.owner?.id]),
    [["18446744073709551615", "3"], ["8", undefined], ["9", "3"], ["10", undefined], ["11", "3"]],
  );
});

test("a refused history or storage call is thrown as Refused with the contract's name", () => {
  const { raw } = fakeImports(undefined);
  (raw.storage as unknown as Record<string, unknown>).set = () => {
    throw Object.assign(new Error("refused"), { payload: "too-many-pending" });
  };
  let seen = "";
  const exported = exportPlugin(
    definePlugin({
      onMessage() {
        try {
          storage.set("k", "v");
        } catch (err) {
          seen = err instanceof Refused ? err.refusal : "other";
        }
      },
      onWritten() {},
    }),
    raw,
  );
  exported.connectionEvents.onConnect(1n, request);
  exported.connectionEvents.onMessage(1n, { tag: "text", val: "x" });
  assert.equal(seen, "too-many-pending");
});

test("the events' answers become the SDK's results: numbers for counts, strings for ids, errors by kind", () => {
  const { raw } = fakeImports(undefined);
  const got: Array<[string, string, string | undefined, AppendResult | HistoryResult | ReadResult | WriteResult]> = [];
  const exported = exportPlugin(
    definePlugin({
      onAppended: (r, result) => void got.push(["appended", r.id, r.owner?.id, result]),
      onHistory: (r, result) => void got.push(["history", r.id, r.owner?.id, result]),
      onRead: (r, result) => void got.push(["read", r.id, r.owner?.id, result]),
      onWritten: (r, result) => void got.push(["written", r.id, r.owner?.id, result]),
    }),
    raw,
  );
  const max = 2n ** 64n - 1n;
  exported.historyEvents.onAppended(max, 5n, { tag: "ok", val: { offset: 7n, epoch: "e" } });
  exported.historyEvents.onAppended(2n, undefined, { tag: "err", val: { tag: "quota-exceeded" } });
  const entries = [
    { offset: 1n, message: { tag: "text" as const, val: "hi" }, appendedAtMs: 1_700_000_000_000n },
    { offset: 2n, message: { tag: "binary" as const, val: Uint8Array.from([9]) }, appendedAtMs: 1_700_000_000_001n },
  ];
  exported.historyEvents.onHistory(3n, undefined, { tag: "ok", val: { epoch: "e", entries, complete: false } });
  exported.storageEvents.onRead(4n, undefined, {
    tag: "ok",
    val: { value: Uint8Array.from([104, 105]), revision: 12n, expiresAtMs: 99n },
  });
  exported.storageEvents.onRead(5n, undefined, { tag: "ok", val: undefined });
  exported.storageEvents.onRead(6n, undefined, { tag: "err", val: { tag: "unavailable", val: "broker away" } });
  exported.storageEvents.onWritten(7n, 5n, { tag: "ok", val: 13n });
  exported.storageEvents.onWritten(8n, undefined, { tag: "err", val: { tag: "conflict", val: 0n } });
  const simple = got.map(([kind, id, owner, result]) => [kind, id, owner, JSON.parse(JSON.stringify(result))]);
  assert.deepEqual(simple, [
    ["appended", "18446744073709551615", "5", { ok: true, position: { offset: 7, epoch: "e" } }],
    ["appended", "2", undefined, { ok: false, error: { kind: "quota-exceeded" } }],
    [
      "history",
      "3",
      undefined,
      {
        ok: true,
        page: {
          epoch: "e",
          entries: [
            { offset: 1, message: "hi", appendedAtMs: 1_700_000_000_000 },
            { offset: 2, message: { "0": 9 }, appendedAtMs: 1_700_000_000_001 },
          ],
          complete: false,
        },
      },
    ],
    ["read", "4", undefined, { ok: true, value: { value: { "0": 104, "1": 105 }, revision: 12, expiresAtMs: 99 } }],
    ["read", "5", undefined, { ok: true }],
    ["read", "6", undefined, { ok: false, error: { kind: "unavailable", detail: "broker away" } }],
    ["written", "7", "5", { ok: true, revision: 13 }],
    ["written", "8", undefined, { ok: false, error: { kind: "conflict", revision: 0 } }],
  ]);
  const read = got[3][3] as ReadResult;
  assert.equal(read.ok && read.value?.text(), "hi");
  const page = got[2][3] as HistoryResult;
  assert.ok(page.ok && page.page.entries[1].message instanceof Uint8Array);
});

test("a plugin without the history or storage callbacks that uses them is told which to define", () => {
  const { raw } = fakeImports(undefined);
  const exported = exportPlugin(
    definePlugin({ onMessage: (_c, _s, m) => void (m === "h" ? history.append("g", "m") : storage.get("k")) }),
    { host: raw.host },
  );
  exported.connectionEvents.onConnect(4n, request);
  assert.throws(() => exported.connectionEvents.onMessage(4n, { tag: "text", val: "h" }), /defines no onAppended or onHistory/);
  assert.throws(() => exported.connectionEvents.onMessage(4n, { tag: "text", val: "s" }), /defines no onRead or onWritten/);
});
