// The mock's history and storage rules, which must be the gateway's (and the Rust SDK's mock's): offsets and epochs,
// retention and `complete`, compare-and-set and revisions, time to live, quotas, refusals in the contract's order,
// and when the events come (or do not).

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Connection,
  Refused,
  defer,
  definePlugin,
  history,
  reject,
  storage,
  type AppendResult,
  type HistoryPage,
  type HistoryResult,
  type Position,
  type ReadResult,
  type StorageRequest,
  type WriteResult,
} from "../src/index.ts";
import { MockHost, type HistoryConfig } from "../src/testing/index.ts";

type Event =
  | ["appended", string, AppendResult]
  | ["history", string, HistoryResult]
  | ["read", string, ReadResult]
  | ["written", string, WriteResult];

/** A plugin that records every history and storage event; the tests make its calls with `host.call`. */
function recorder() {
  const events: Event[] = [];
  const plugin = definePlugin({
    onAppended: (request, result) => void events.push(["appended", request.id, result]),
    onHistory: (request, result) => void events.push(["history", request.id, result]),
    onRead: (request, result) => void events.push(["read", request.id, result]),
    onWritten: (request, result) => void events.push(["written", request.id, result]),
  });
  /** Takes the events so far. */
  const take = () => events.splice(0);
  return { plugin, take };
}

function setup(config: Partial<HistoryConfig> = {}) {
  const { plugin, take } = recorder();
  const host = new MockHost(plugin).withHistory(config).withStorage();
  /** Appends `text` to `group` and returns its answer (the event must have come). */
  const append = (group: string, text: string): AppendResult => {
    const request = host.call(() => history.append(group, text));
    const got = take();
    assert.equal(got.length, 1, JSON.stringify(got));
    assert.deepEqual(got[0].slice(0, 2), ["appended", request.id]);
    return got[0][2] as AppendResult;
  };
  const position = (group: string, text: string): Position => {
    const result = append(group, text);
    assert.ok(result.ok, JSON.stringify(result));
    return result.position;
  };
  const read = (group: string, since: Position | undefined, limit: number): HistoryPage => {
    host.call(() => history.read(group, { since, limit }));
    const [event, ...more] = take();
    assert.equal(more.length, 0);
    assert.ok(event[0] === "history" && event[2].ok, JSON.stringify(event));
    return event[2].page;
  };
  const write = (call: () => StorageRequest): WriteResult => {
    host.call(call);
    const [event, ...more] = take();
    assert.equal(more.length, 0);
    assert.equal(event[0], "written");
    return event[2] as WriteResult;
  };
  const revision = (call: () => StorageRequest): number => {
    const result = write(call);
    assert.ok(result.ok, JSON.stringify(result));
    return result.revision;
  };
  const get = (key: string) => {
    host.call(() => storage.get(key));
    const [event, ...more] = take();
    assert.equal(more.length, 0);
    assert.ok(event[0] === "read" && event[2].ok, JSON.stringify(event));
    return event[2].value;
  };
  return { host, take, append, position, read, write, revision, get };
}

const offsets = (page: HistoryPage) => page.entries.map((e) => e.offset);
const at = (offset: number, epoch: string): Position => ({ offset, epoch });

function refusal(call: () => unknown): string {
  try {
    call();
  } catch (err) {
    if (err instanceof Refused) return err.refusal;
    throw err;
  }
  return "none";
}

test("offsets are consecutive from 1 per group, and the events come after the event, in order", () => {
  const { host, take, position, read } = setup();
  const ids = host.call(() => {
    const ids = ["a", "b", "a"].map((g) => history.append(g, "m").id);
    // Nothing is delivered while the event runs.
    assert.deepEqual(take(), []);
    return ids;
  });
  const got = take().map(([kind, id, result]) => [kind, id, result.ok && "position" in result ? result.position.offset : result]);
  assert.deepEqual(got, [
    ["appended", ids[0], 1],
    ["appended", ids[1], 1],
    ["appended", ids[2], 2],
  ]);
  const epoch = host.historyEpoch("a") as string;
  assert.notEqual(epoch, host.historyEpoch("b"));
  assert.deepEqual(position("a", "m"), at(3, epoch));
  const page = read("a", undefined, 10);
  assert.deepEqual([offsets(page), page.complete], [[1, 2, 3], true]);
  assert.equal(page.entries[0].message, "m");
});

test("size retention makes pages incomplete, and limit pages through what is kept", () => {
  const { host, position, read } = setup({ size: 3 });
  for (const text of ["1", "2", "3", "4", "5"]) position("g", text);
  const epoch = host.historyEpoch("g") as string;
  const latest = read("g", undefined, 100);
  assert.deepEqual([offsets(latest), latest.complete, latest.epoch], [[3, 4, 5], true, epoch]);
  // Offset 2 was dropped after 1: the page starts at the oldest kept, and says so.
  const cases: Array<[Position | undefined, number, number[], boolean]> = [
    [at(1, epoch), 100, [3, 4, 5], false],
    [at(2, epoch), 100, [3, 4, 5], true],
    [at(3, epoch), 1, [4], true],
    [at(5, epoch), 10, [], true],
    // A position this stream never had, or another epoch's, is not a place to continue from.
    [at(9, epoch), 10, [], false],
    [at(4, "another"), 10, [3, 4, 5], false],
    // A limit of 0 reads one; the latest page without a position is the newest messages.
    [undefined, 0, [5], true],
    [undefined, 2, [4, 5], true],
  ];
  for (const [since, limit, want, complete] of cases) {
    const page = read("g", since, limit);
    assert.deepEqual([offsets(page), page.complete], [want, complete], JSON.stringify(since));
  }
});

test("a page holds at most 4 MiB of messages, as in the gateway", () => {
  const { host, take, read } = setup({ maxMessageBytes: 800_000, size: 10 });
  host.call(() => {
    for (let i = 0; i < 6; i++) history.append("big", new Uint8Array(700_000).fill(i));
  });
  assert.equal(take().length, 6, "the appends' events");
  const epoch = host.historyEpoch("big") as string;
  // Six would be 4.2 MB, past 4 MiB: a page since a position ends early, the latest page keeps the newest.
  assert.deepEqual(offsets(read("big", at(0, epoch), 10)), [1, 2, 3, 4, 5]);
  assert.deepEqual(offsets(read("big", undefined, 10)), [2, 3, 4, 5, 6]);
});

test("ttl expires messages on the mock's clock, and an emptied group starts a new epoch", () => {
  const { host, position, read } = setup({ ttlSecs: 10 });
  const first = position("g", "old");
  host.advance(6_000);
  position("g", "new");
  assert.equal(host.history("g")[0].appendedAtMs, 0);
  host.advance(4_000);
  // 10 s after the first: it is gone, the second (4 s old) is kept.
  const page = read("g", at(0, first.epoch), 10);
  assert.deepEqual([offsets(page), page.complete, page.entries[0].appendedAtMs], [[2], false, 6_000]);
  host.advance(6_000);
  assert.deepEqual(host.history("g"), []);
  assert.equal(host.historyEpoch("g"), undefined);
  const gone = read("g", at(2, first.epoch), 10);
  assert.deepEqual([gone.epoch, gone.complete], ["", false]);
  const none = read("g", undefined, 10);
  assert.deepEqual([none.epoch, none.complete], ["", true]);
  const again = position("g", "again");
  assert.equal(again.offset, 1);
  assert.notEqual(again.epoch, first.epoch);
});

test("history quotas refuse a group too many and bytes past max_bytes, but size retention frees room", () => {
  const { host, append, position } = setup({ size: 2, maxGroups: 2, maxBytes: 10 });
  const quota = { ok: false, error: { kind: "quota-exceeded" } };
  position("a", "1234");
  position("b", "1234");
  assert.deepEqual(append("c", "1"), quota);
  assert.deepEqual(append("b", "123"), quota);
  assert.equal(position("b", "12").offset, 2);
  // 10 of 10 bytes, b is full: its next message drops its oldest (4 bytes), which makes room for 4.
  assert.deepEqual(append("b", "12345"), quota);
  assert.equal(position("b", "1234").offset, 3);
  assert.deepEqual(host.history("c"), []);
  assert.equal(host.history("b").length, 2);
  // Bytes are UTF-8 bytes: "éé" is 4.
  assert.deepEqual(append("b", "éé1"), quota);
});

test("history calls are refused as the gateway refuses them, in the contract's order", () => {
  const { plugin, take } = recorder();
  const host = new MockHost(plugin).withHistory({ maxMessageBytes: 4 }).withStorage().withMaxStorageRequests(2);
  const conn = host.connect("/t").unwrap();
  const long = "g".repeat(257);
  const stranger = new Connection("99");
  host.call(() => {
    assert.equal(refusal(() => history.append("", "m")), "invalid-name");
    assert.equal(refusal(() => history.read(long, { limit: 1 })), "invalid-name");
    assert.equal(refusal(() => history.append("g", "12345")), "too-large");
    // Too large comes before an invalid name, which comes before an unknown owner.
    assert.equal(refusal(() => history.append("", "12345", stranger)), "too-large");
    assert.equal(refusal(() => history.append("", "m", stranger)), "invalid-name");
    assert.equal(refusal(() => history.append("g", "m", stranger)), "unknown-connection");
    history.append("g", "m", conn);
    storage.get("k", conn);
    assert.equal(refusal(() => history.read("g", { limit: 1, owner: conn })), "too-many-pending");
    // An unknown owner comes before the cap.
    assert.equal(refusal(() => history.read("g", { limit: 1, owner: stranger })), "unknown-connection");
  });
  assert.equal(take().length, 2, "a refused request gets no event");
  const unconfigured = new MockHost(recorder().plugin);
  unconfigured.call(() => {
    // Not configured comes first of all.
    assert.equal(refusal(() => history.append("", "m")), "not-configured");
    assert.equal(refusal(() => storage.get("")), "not-configured");
  });
});

test("requests from init are refused with not-now, after the table, size and name checks", () => {
  const seen: string[] = [];
  const host = new MockHost(
    definePlugin({
      init() {
        seen.push(refusal(() => history.append("g", "m")));
        seen.push(refusal(() => storage.set("k", "v")));
        seen.push(refusal(() => storage.set("", "v")));
        seen.push(refusal(() => storage.remove("k")));
      },
      onAppended() {},
      onWritten() {},
    }),
  )
    .withHistory()
    .withStorage();
  assert.equal(host.init(), undefined);
  assert.deepEqual(seen, ["not-now", "not-now", "invalid-name", "not-now"]);
});

test("an owner's close and a restart drop the events but keep the writes", () => {
  const { host, take } = setup();
  const conn = host.connect("/t").unwrap();
  host.call(() => {
    history.append("g", "kept", conn);
    storage.set("k", "kept", { owner: conn });
    history.append("g", "unowned");
    conn.close(1000, "bye");
  });
  const got = take();
  assert.equal(got.length, 1, JSON.stringify(got));
  assert.ok(got[0][0] === "appended" && got[0][2].ok && got[0][2].position.offset === 2);
  assert.equal(host.history("g").length, 2);
  assert.equal(host.stored("k")?.text(), "kept");
  // A request made from a callback the client's close follows: its event dies with the connection too.
  const other = host.connect("/t").unwrap();
  host.clientClose(other);
  assert.equal(refusal(() => host.call(() => storage.get("k", other))), "unknown-connection");
  // A request made in the callback that replaces the instance dies with the old instance.
  host.call(() => history.append("g", "lost"));
  take();
  host.restart();
  assert.deepEqual(take(), []);
});

test("a failing store answers unavailable and changes nothing", () => {
  const { host, take, append, position } = setup();
  position("g", "one");
  host.failStore("broker away");
  const unavailable = { ok: false, error: { kind: "unavailable", detail: "broker away" } };
  assert.deepEqual(append("g", "two"), unavailable);
  const request = host.call(() => storage.set("k", "v"));
  assert.deepEqual(take(), [["written", request.id, unavailable]]);
  assert.equal(request.id, "3");
  host.failStore();
  assert.equal(position("g", "three").offset, 2);
  assert.equal(host.stored("k"), undefined);
});

test("a reset history starts every group again in a new epoch", () => {
  const { host, position, read } = setup();
  const before = position("g", "one");
  host.resetHistory();
  const after = position("g", "two");
  assert.equal(after.offset, 1);
  assert.notEqual(after.epoch, before.epoch);
  const page = read("g", before, 10);
  assert.deepEqual([offsets(page), page.complete], [[1], false]);
});

test("revisions grow with every write of the route, and compare-and-set checks them", () => {
  const { get, write, revision } = setup();
  assert.equal(get("k"), undefined);
  const one = revision(() => storage.set("k", "a", { ifRevision: 0 }));
  assert.ok(one > 0);
  assert.deepEqual(write(() => storage.set("k", "b", { ifRevision: 0 })), { ok: false, error: { kind: "conflict", revision: one } });
  const other = revision(() => storage.set("j", "x"));
  const two = revision(() => storage.set("k", "b", { ifRevision: one }));
  assert.ok(one < other && other < two);
  const value = get("k");
  assert.deepEqual([value?.text(), value?.revision, value?.expiresAtMs], ["b", two, undefined]);
  assert.deepEqual(write(() => storage.remove("k", { ifRevision: one })), { ok: false, error: { kind: "conflict", revision: two } });
  const removed = revision(() => storage.remove("k", { ifRevision: two }));
  assert.ok(removed > two, "a removal is a write with a revision");
  assert.equal(get("k"), undefined);
  // Removing what does not exist succeeds; compare-and-set sees it as revision 0.
  assert.ok(revision(() => storage.remove("k")) > removed);
  assert.ok(write(() => storage.remove("k", { ifRevision: 0 })).ok);
  assert.deepEqual(write(() => storage.remove("j", { ifRevision: 0 })), { ok: false, error: { kind: "conflict", revision: other } });
});

test("a value with a ttl expires on the mock's clock, and bytes are stored as given", () => {
  const { host, get, write } = setup();
  host.advance(1_000);
  assert.ok(write(() => storage.set("k", Uint8Array.from([0, 255]), { ttlMs: 5_000 })).ok);
  const value = get("k");
  assert.deepEqual([value?.value, value?.expiresAtMs], [Uint8Array.from([0, 255]), 6_000]);
  // The value a plugin reads is its own copy.
  value?.value.fill(7);
  assert.deepEqual(host.stored("k")?.value, Uint8Array.from([0, 255]));
  host.advance(4_999);
  assert.notEqual(get("k"), undefined);
  host.advance(1);
  assert.equal(get("k"), undefined);
  // Expired is absent, for compare-and-set too; a ttl of 0 expires at once.
  assert.ok(write(() => storage.set("k", "w", { ifRevision: 0, ttlMs: 0 })).ok);
  assert.equal(get("k"), undefined);
});

test("storage quotas and caps refuse what passes them", () => {
  const { plugin, take } = recorder();
  const host = new MockHost(plugin).withStorage({ maxKeyBytes: 3, maxValueBytes: 4, maxKeys: 2, maxBytes: 10 });
  const write = (call: () => StorageRequest): WriteResult => {
    host.call(call);
    const [event] = take();
    return event[2] as WriteResult;
  };
  const quota = { ok: false, error: { kind: "quota-exceeded" } };
  host.call(() => {
    assert.equal(refusal(() => storage.get("")), "invalid-name");
    assert.equal(refusal(() => storage.remove("abcd")), "invalid-name");
    assert.equal(refusal(() => storage.get("éé")), "invalid-name", "key bytes are UTF-8 bytes");
    assert.equal(refusal(() => storage.set("a", "12345")), "too-large");
    // The contract's order: too large before an invalid name.
    assert.equal(refusal(() => storage.set("abcd", "12345")), "too-large");
  });
  assert.ok(write(() => storage.set("a", "1234")).ok);
  assert.ok(write(() => storage.set("b", "1", { ttlMs: 1_000 })).ok);
  assert.deepEqual(write(() => storage.set("c", "1")), quota);
  // Replacing a key does not add one, and its old bytes make room: 5 + 2 of 10 bytes becomes 5 + 5.
  assert.ok(write(() => storage.set("b", "1234")).ok);
  assert.ok(write(() => storage.remove("b")).ok);
  // 5 + 6 bytes: past max_bytes with a key to spare.
  assert.deepEqual(write(() => storage.set("bb", "1234")), quota);
  assert.ok(write(() => storage.set("c", "1", { ttlMs: 1_000 })).ok);
  // An expired key no longer counts.
  host.advance(1_000);
  assert.ok(write(() => storage.set("d", "1")).ok);
  assert.equal(host.stored("a")?.text(), "1234");
});

test("a plugin using history or storage without their callbacks is refused as the gateway refuses it", () => {
  const host = new MockHost(definePlugin({ onRead() {} })).withHistory().withStorage();
  assert.throws(() => host.call(() => history.append("g", "m")), /does not export `wssgate:plugin\/history-events`/);
  const other = new MockHost(definePlugin({ onHistory() {} })).withHistory().withStorage();
  assert.throws(() => other.call(() => storage.get("k")), /does not export `wssgate:plugin\/storage-events`/);
  // One callback of the pair is enough: the other's events are dropped.
  assert.equal(refusal(() => host.call(() => storage.set("k", "v"))), "none");
});

test("numbers the contract cannot carry are refused before the call", () => {
  const { host } = setup();
  host.call(() => {
    assert.throws(() => storage.set("k", "v", { ifRevision: -1 }), RangeError);
    assert.throws(() => storage.set("k", "v", { ifRevision: 1.5 }), RangeError);
    assert.throws(() => storage.remove("k", { ifRevision: Number.MAX_SAFE_INTEGER + 1 }), RangeError);
    assert.throws(() => storage.set("k", "v", { ttlMs: Number.NaN }), RangeError);
    assert.throws(() => history.read("g", { limit: -1 }), RangeError);
    assert.throws(() => history.read("g", { since: at(-1, "e"), limit: 1 }), RangeError);
  });
});

test("a deferred upgrade can be answered from a storage event, and a rejected one's requests get none", () => {
  const tokens = new Map<string, Connection>();
  const plugin = definePlugin<string>({
    onConnect(conn, request) {
      const token = request.query;
      if (token === "deny") {
        storage.get("token:deny", conn);
        return reject(401, "no");
      }
      tokens.set(storage.get(`token:${token}`, conn).id, conn);
      return defer(token);
    },
    onRead(request, result) {
      const conn = tokens.get(request.id);
      if (conn === undefined) throw new Error(`an event for request ${request.id}, which nobody waits for`);
      tokens.delete(request.id);
      assert.ok(conn.equals(request.owner));
      if (result.ok && result.value?.text() === "valid") conn.accept();
      else conn.reject(403, "unknown token");
    },
  });
  const host = new MockHost(plugin).withStorage();
  host.call(() => storage.set("token:abc", "valid"));
  const good = host.connect("/t?abc").deferred();
  assert.deepEqual(host.status(good), { kind: "open" });
  const bad = host.connect("/t?xyz");
  assert.deepEqual(bad.rejected(), { status: 403, body: "unknown token" });
  assert.deepEqual(host.connect("/t?deny").rejected(), { status: 401, body: "no" });
  assert.equal(tokens.size, 0);
});

test("requests made by the plugin's events are answered in turn, and endless chains are stopped", () => {
  let left = 3;
  const appended: number[] = [];
  const chain = new MockHost(
    definePlugin({
      onMessage: () => void history.append("g", "m"),
      onAppended(_request, result) {
        if (result.ok) appended.push(result.position.offset);
        if (--left > 0) history.append("g", "m");
      },
    }),
  ).withHistory();
  chain.message(chain.connect("/t").unwrap(), "go");
  assert.deepEqual(appended, [1, 2, 3]);
  const endless = new MockHost(
    definePlugin({ onMessage: () => void storage.get("k"), onRead: () => void storage.get("k") }),
  ).withStorage();
  const conn = endless.connect("/t").unwrap();
  assert.throws(() => endless.message(conn, "go"), /from each of 100000 answers in a row/);
});

test("request handles print and serialize as their id, and carry their owner", () => {
  const { host } = setup();
  const conn = host.connect("/t").unwrap();
  const request = host.call(() => storage.get("k", conn));
  assert.equal(JSON.stringify({ request }), `{"request":"${request.id}"}`);
  assert.ok(request.owner?.equals(conn));
  assert.ok(!request.equals(host.call(() => storage.get("k"))));
});
