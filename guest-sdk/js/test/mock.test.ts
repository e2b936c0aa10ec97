// The mock host's rules, which must be the gateway's: refusals and caps, per-connection state, close codes, queues,
// deferred upgrades and timeouts, restarts, timers and HTTP requests.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Connection,
  Refused,
  accept,
  defer,
  definePlugin,
  groups,
  http,
  reject,
  timers,
  users,
  type Plugin,
} from "../src/index.ts";
import { HttpResponse, MockHost } from "../src/testing/index.ts";

/** A plugin that does nothing by itself but defines every optional callback, for tests of the calls. */
const quiet = definePlugin({ onTimer() {}, onHttpResponse() {} });

function refusal(call: () => unknown): string {
  try {
    call();
  } catch (err) {
    if (err instanceof Refused) return err.refusal;
    throw err;
  }
  return "none";
}

test("calls on a closed or unknown connection are refused and change nothing", () => {
  const host = new MockHost(quiet);
  const gone = host.connect("/x").unwrap();
  host.clientClose(gone);
  for (const conn of [gone, new Connection("999")]) {
    host.call(() => {
      assert.equal(refusal(() => conn.send("hi")), "closed");
      assert.equal(refusal(() => conn.join("g")), "unknown-connection");
      assert.equal(refusal(() => conn.bindUser("u")), "unknown-connection");
      assert.equal(refusal(() => conn.sessionSet("k", "v")), "unknown-connection");
      assert.equal(refusal(() => conn.accept()), "unknown-connection");
      assert.equal(refusal(() => timers.after(10, conn)), "unknown-connection");
      assert.equal(conn.info(), undefined);
      conn.close(1000, "again");
    });
  }
  assert.deepEqual(host.groupMembers("g"), []);
  assert.equal(host.runningTimers(), 0);
  assert.deepEqual(host.closed(gone), { code: 1000, reason: "" });
});

test("names, groups, timers and sessions past their caps are refused", () => {
  const host = new MockHost(quiet).withMaxNameBytes(4).withMaxGroupsPerConnection(2).withMaxTimers(1).withMaxSessionBytes(10);
  const conn = host.connect("/x").unwrap();
  host.call(() => {
    assert.equal(refusal(() => conn.join("12345")), "name-too-long");
    // Four bytes of UTF-8 in two characters fit; five do not.
    assert.equal(refusal(() => conn.join("éé")), "none");
    assert.equal(refusal(() => conn.bindUser("éé1")), "name-too-long");
    assert.equal(refusal(() => conn.join("b")), "none");
    assert.equal(refusal(() => conn.join("c")), "too-many-groups");
    assert.equal(refusal(() => conn.join("b")), "none", "re-joining a group is fine");
    const timer = timers.every(100);
    assert.equal(refusal(() => timers.after(5)), "too-many-timers");
    assert.ok(timer.cancel());
    assert.equal(refusal(() => timers.after(5)), "none");
    assert.equal(refusal(() => conn.sessionSet("k", "123456789")), "none");
    assert.equal(refusal(() => conn.sessionSet("k2", "1")), "too-large");
    assert.equal(refusal(() => conn.sessionSet("k", "1234567890")), "too-large");
  });
  assert.equal(host.session(conn, "k"), "123456789", "a refused value keeps the old one");
  assert.deepEqual(host.groupsOf(conn), ["b", "éé"]);
});

test("refusals say what went wrong in their message too", () => {
  const err = new Refused("too-many-groups");
  assert.equal(err.refusal, "too-many-groups");
  assert.match(err.message, /^too-many-groups: connection is in too many groups$/);
  assert.ok(err instanceof Error);
});

test("per-connection state is created, handed to each event, replaced by a returned value and dropped on close", () => {
  const closes: Array<[string, number, number]> = [];
  const counter = (): Plugin<number> =>
    definePlugin<number>({
      onConnect: (_conn, request) => accept(request.restored ? 100 : 0),
      onMessage(conn, count) {
        conn.send(`count ${count}`);
        return count + 1;
      },
      onClose: (conn, count, close) => void closes.push([conn.id, count, close.code]),
    });
  const host = new MockHost(counter);
  const a = host.connect("/x").unwrap();
  const b = host.connect("/x").unwrap();
  host.message(a, "1");
  host.message(a, "2");
  host.message(b, "1");
  assert.deepEqual(host.takeSent(a), ["count 0", "count 1"]);
  assert.deepEqual(host.takeSent(b), ["count 0"]);
  assert.equal(host.state(a), 2);
  host.restart();
  assert.equal(host.state(a), 100, "the replay rebuilt the state");
  host.clientClose(a, 1001, "away");
  assert.deepEqual(closes, [[a.id, 100, 1001]]);
  assert.equal(host.states(), 1);
  assert.equal(host.state(a), undefined);
});

test("close codes are made sendable and reasons cut to 123 bytes, as the gateway does", () => {
  const host = new MockHost(quiet);
  for (const [code, expected] of [[1000, 1000], [1005, 1008], [1006, 1008], [1015, 1008], [999, 1008], [5000, 1008], [4000, 4000], [1011, 1011]]) {
    const conn = host.connect("/x").unwrap();
    host.call(() => conn.close(code, "é".repeat(100)));
    const frame = host.closed(conn);
    assert.equal(frame?.code, expected, `code ${code}`);
    assert.equal(frame?.reason, "é".repeat(61), "61 two-byte characters fit in 123 bytes");
  }
});

test("a full outbound queue refuses the send and closes the slow client with 1008", () => {
  const host = new MockHost(quiet).withMaxOutboundBytes(10);
  const conn = host.connect("/x").unwrap();
  host.call(() => {
    conn.send("123456");
    assert.equal(refusal(() => conn.send("123456")), "queue-full");
  });
  assert.deepEqual(host.closed(conn), { code: 1008, reason: "slow consumer" });
  assert.deepEqual(host.takeSent(conn), []);
});

test("a deferred upgrade waits for accept, reject or the accept timeout, and accept answers only a waiting one", () => {
  let later: Connection[] = [];
  const plugin = definePlugin({
    onConnect(conn, request) {
      if (request.query === "now") return accept(undefined);
      if (request.query === "no") return reject(99, "bad status");
      later.push(conn);
      return defer(undefined);
    },
    onMessage(conn) {
      conn.send(refusal(() => conn.accept()));
    },
  });
  const host = new MockHost(plugin).withAcceptTimeout(1000);
  assert.deepEqual(host.connect("/x?no").rejected(), { status: 500, body: "bad status" });
  const waiting = host.connect("/x").deferred();
  const rejected = host.connect("/x").deferred();
  const timedOut = host.connect("/x").deferred();
  assert.throws(() => host.message(waiting, "early"), /waits for its accept/);
  host.call(() => {
    later[0].send("queued");
    later[0].accept();
    later[1].reject(401, "later");
  });
  assert.equal(host.status(waiting)?.kind, "open");
  assert.deepEqual(host.takeSent(waiting), ["queued"]);
  assert.deepEqual(host.status(rejected), { kind: "rejected", rejection: { status: 401, body: "later" } });
  host.advance(999);
  assert.equal(host.status(timedOut)?.kind, "waiting");
  host.advance(1);
  assert.equal(host.status(timedOut)?.kind, "rejected");
  host.message(waiting, "accept again");
  assert.deepEqual(host.takeSent(waiting), ["not-deferred"]);
  const open = host.connect("/x?now").unwrap();
  host.message(open, "accept");
  assert.deepEqual(host.takeSent(open), ["not-deferred"]);
  later = [];
});

test("init's refusal is returned once and every later call throws it", () => {
  const host = new MockHost(definePlugin({ init: () => { throw new Error("no such room"); }, onMessage() {} }));
  assert.equal(host.init(), "no such room");
  assert.throws(() => host.connect("/x"), /init refused the route's settings: no such room/);
});

test("timers fire in order on the virtual clock, repeat, and die with their owner", () => {
  const fired: string[] = [];
  const plugin = definePlugin({
    onConnect(conn) {
      timers.every(30, conn);
      timers.after(50);
      return accept(undefined);
    },
    onTimer: (timer) => void fired.push(timer.owner === undefined ? "route" : "owned"),
  });
  const host = new MockHost(plugin);
  const conn = host.connect("/x").unwrap();
  host.advance(95);
  assert.deepEqual(fired, ["owned", "route", "owned", "owned"]);
  host.clientClose(conn);
  assert.equal(host.runningTimers(), 0);
});

test("a plugin that starts timers or sends requests without their callbacks is refused as the gateway refuses it", () => {
  const host = new MockHost(definePlugin({ onMessage: () => void timers.after(5) }));
  const conn = host.connect("/x").unwrap();
  assert.throws(() => host.message(conn, "x"), /defines no onTimer/);
  const noHttp = new MockHost(definePlugin({ onMessage: () => void http.get("api", "/") }));
  const other = noHttp.connect("/x").unwrap();
  assert.throws(() => noHttp.message(other, "x"), /defines no onHttpResponse/);
});

test("HTTP requests are refused like the gateway refuses them, answered by the test, and die with their owner", () => {
  const results: string[] = [];
  const plugin = definePlugin({
    onMessage(conn, _state, message) {
      try {
        http.post("api", String(message), "body", { owner: conn, headers: [["x-a", "1"]] });
        conn.send("sent");
      } catch (err) {
        conn.send(err instanceof Refused ? err.refusal : String(err));
      }
    },
    onHttpResponse(request, result) {
      results.push(result.ok ? `${request.owner?.id} ${result.response.status} ${result.response.text()}` : result.error.kind);
    },
  });
  const host = new MockHost(plugin).withUpstream("api").withMaxRequestsInFlight(2);
  const conn = host.connect("/x").unwrap();
  for (const path of ["/a", "no-slash", "/b", "/c"]) host.message(conn, path);
  assert.deepEqual(host.takeSent(conn), ["sent", "invalid-request", "sent", "too-many-in-flight"]);
  const [[first, firstRequest], [second]] = host.httpRequests();
  assert.equal(firstRequest.path, "/a");
  host.respond(first, new HttpResponse(200, "ok"));
  host.fail(second, { kind: "timeout" });
  assert.deepEqual(results, [`${conn.id} 200 ok`, "timeout"]);
  assert.throws(() => host.respond(first, new HttpResponse(200)), /not waiting for an answer/);
  host.message(conn, "/d");
  host.clientClose(conn);
  assert.deepEqual(host.httpRequests(), [], "the owner's close cancelled its request");
  const ungranted = new MockHost(plugin);
  const c = ungranted.connect("/x").unwrap();
  ungranted.message(c, "/a");
  assert.deepEqual(ungranted.takeSent(c), ["not-granted"]);
});

test("requests from init are refused with not-now", () => {
  let seen = "";
  const host = new MockHost(
    definePlugin({
      init() {
        seen = refusal(() => http.get("api", "/"));
      },
      onHttpResponse() {},
    }),
  ).withUpstream("api");
  assert.equal(host.init(), undefined);
  assert.equal(seen, "not-now");
});

test("groups, users and broadcasts reach the right connections and count them", () => {
  const host = new MockHost(quiet);
  const [a, b, c] = [host.connect("/x").unwrap(), host.connect("/x").unwrap(), host.connect("/x").unwrap()];
  host.call(() => {
    a.join("g");
    b.join("g");
    a.bindUser("ann");
    c.bindUser("ann");
    assert.equal(groups.publish("g", "to g", [a]), 1);
    assert.equal(groups.size("g"), 2);
    assert.equal(users.send("ann", Uint8Array.from([7])), 2);
    assert.ok(users.isOnline("ann"));
    assert.deepEqual(users.connections("ann").map((x) => x.id), [a.id, c.id]);
    assert.equal(groups.broadcast("all", [b]), 2);
  });
  assert.deepEqual(host.takeSent(a), [Uint8Array.from([7]), "all"]);
  assert.deepEqual(host.takeSent(b), ["to g"]);
  assert.deepEqual(host.takeSent(c), [Uint8Array.from([7]), "all"]);
  host.clientClose(a);
  assert.deepEqual(host.groupMembers("g"), [b]);
  assert.equal(host.userOf(a), undefined);
});

test("ids are strings, so handles print and serialize as their id", () => {
  const conn = new Connection("18446744073709551615");
  assert.equal(JSON.stringify({ conn }), '{"conn":"18446744073709551615"}');
  assert.equal(`${conn}`, "18446744073709551615");
});

test("a host call outside an event says how to make one", () => {
  assert.throws(() => new Connection("1").send("x"), /outside an event/);
});

test("a default export that is not a plugin is refused with a message that says so", () => {
  assert.throws(() => new MockHost(42 as unknown as Plugin), /must be the plugin object/);
  assert.throws(() => new MockHost({ onMessage: "echo" } as unknown as Plugin), /onMessage must be a function/);
  assert.throws(() => new MockHost({ hello() {} } as unknown as Plugin), /none of the plugin callbacks/);
});
