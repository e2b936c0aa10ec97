// The chat protocol, driven through the SDK's mock host: the Rust chat plugin's tests (plugins/chat/src/tests.rs),
// one for one, plus the byte-exact form of the replies.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Connection } from "wssgate";
import { MockHost } from "wssgate/testing";
import chat, { type Member } from "../src/plugin.ts";

type Json = Record<string, unknown>;

function received(host: MockHost<Member>, conn: Connection): Json[] {
  return host.takeSent(conn).map((m) => {
    assert.equal(typeof m, "string", "chat replies are text");
    return JSON.parse(m as string) as Json;
  });
}

function exchange(host: MockHost<Member>, conn: Connection, value: Json): void {
  host.message(conn, JSON.stringify(value));
}

function loggedIn(host: MockHost<Member>, uid: string): Connection {
  const conn = host.connect("/chat").unwrap();
  exchange(host, conn, { type: "login", uid });
  assert.equal(received(host, conn)[0]?.type, "login");
  return conn;
}

test("replies are written as the Rust plugin writes them: keys sorted", () => {
  const host = new MockHost(chat);
  const conn = host.connect("/chat").unwrap();
  exchange(host, conn, { type: "login", uid: "ann" });
  assert.deepEqual(host.takeSent(conn), [`{"connection":"${conn.id}","type":"login","uid":"ann"}`]);
});

test("everyone in a room gets each say once", () => {
  const host = new MockHost(chat);
  const members = ["ann", "bob", "cid"].map((u) => loggedIn(host, u));
  for (const m of members) exchange(host, m, { type: "join", room: "lobby" });
  for (const m of members) host.takeSent(m);
  exchange(host, members[0], { type: "say", room: "lobby", text: "hi" });
  for (const m of members) {
    assert.deepEqual(received(host, m), [{ type: "say", room: "lobby", from: "ann", text: "hi" }]);
  }
});

test("joining and leaving announce presence, and leaving stops delivery", () => {
  const host = new MockHost(chat);
  const ann = loggedIn(host, "ann");
  const bob = loggedIn(host, "bob");
  exchange(host, ann, { type: "join", room: "r" });
  exchange(host, bob, { type: "join", room: "r" });
  assert.equal(received(host, ann).at(-1)?.event, "join");
  assert.deepEqual(received(host, bob)[0], { type: "joined", room: "r", members: 2 });
  exchange(host, bob, { type: "leave", room: "r" });
  assert.equal(received(host, ann)[0]?.event, "leave");
  host.takeSent(bob);
  exchange(host, ann, { type: "say", room: "r", text: "anyone?" });
  assert.deepEqual(received(host, bob), []);
});

test("a dm reaches every connection of the user", () => {
  const host = new MockHost(chat);
  const phone = loggedIn(host, "bob");
  const desktop = loggedIn(host, "bob");
  const ann = loggedIn(host, "ann");
  exchange(host, ann, { type: "dm", to: "bob", text: "psst" });
  for (const conn of [phone, desktop]) {
    assert.deepEqual(received(host, conn), [{ type: "dm", from: "ann", text: "psst" }]);
  }
  exchange(host, ann, { type: "dm", to: "nobody", text: "?" });
  assert.equal(received(host, ann)[0]?.type, "error");
  exchange(host, ann, { type: "online", uid: "bob" });
  assert.deepEqual(received(host, ann), [{ type: "online", uid: "bob", connections: 2 }]);
});

test("malformed input is answered with an error", () => {
  const host = new MockHost(chat);
  const conn = host.connect("/chat").unwrap();
  const bad = [
    "not json",
    "{}",
    '{"type":"fly"}',
    '{"type":"say","room":"r"}',
    "[1,2]",
    '{"type":"whoami","extra":1}',
    '{"type":"remind","after_ms":-1,"text":"t"}',
    '{"type":"remind","after_ms":1.5,"text":"t"}',
    '{"type":"login","uid":7}',
  ];
  for (const text of bad) {
    host.message(conn, text);
    const got = received(host, conn);
    assert.equal(got.length, 1, text);
    assert.equal(got[0]?.type, "error", text);
    assert.match(String(got[0]?.reason), /^bad message: /, text);
  }
  host.message(conn, Uint8Array.from([1, 2]));
  assert.deepEqual(received(host, conn), [{ type: "error", reason: "messages are JSON text" }]);
  exchange(host, conn, { type: "join", room: "r" });
  assert.equal(received(host, conn)[0]?.reason, "log in first");
});

test("the session keeps the user across messages", () => {
  const host = new MockHost(chat);
  const conn = loggedIn(host, "ann");
  assert.equal(host.session(conn, "uid"), "ann");
  exchange(host, conn, { type: "whoami" });
  assert.equal(received(host, conn)[0]?.uid, "ann");
});

test("reminders fire once and ticks stop when asked", () => {
  const host = new MockHost(chat);
  const conn = loggedIn(host, "ann");
  exchange(host, conn, { type: "remind", after_ms: 500, text: "tea" });
  exchange(host, conn, { type: "ticks", every_ms: 100 });
  host.advance(450);
  let got = received(host, conn);
  assert.equal(got.length, 4, JSON.stringify(got));
  assert.ok(got.every((v) => v.type === "tick"));
  host.advance(100);
  got = received(host, conn);
  assert.ok(got.some((v) => v.type === "reminder" && v.text === "tea"), JSON.stringify(got));
  exchange(host, conn, { type: "stop_ticks" });
  host.takeSent(conn);
  host.advance(1000);
  assert.deepEqual(received(host, conn), []);
  assert.equal(host.runningTimers(), 0);
});

test("closing announces leave and cancels owned timers", () => {
  const host = new MockHost(chat);
  const ann = loggedIn(host, "ann");
  const bob = loggedIn(host, "bob");
  exchange(host, ann, { type: "join", room: "r" });
  exchange(host, bob, { type: "join", room: "r" });
  exchange(host, bob, { type: "ticks", every_ms: 100 });
  host.takeSent(ann);
  host.clientClose(bob, 1000, "bye");
  assert.deepEqual(received(host, ann), [{ type: "presence", room: "r", uid: "bob", event: "leave" }]);
  assert.equal(host.runningTimers(), 0);
  assert.deepEqual(host.groupMembers("room:r"), [ann]);
});

test("a room name the gateway refuses is answered with an error and announced to nobody", () => {
  // "room:" + 10 bytes fits the gateway's 15-byte names; 11 does not.
  const host = new MockHost(chat).withMaxNameBytes(15);
  const ann = loggedIn(host, "ann");
  const bob = loggedIn(host, "bob");
  exchange(host, bob, { type: "join", room: "0123456789" });
  host.takeSent(bob);
  exchange(host, ann, { type: "join", room: "0123456789" });
  assert.equal(received(host, ann)[0]?.type, "joined");
  exchange(host, ann, { type: "join", room: "0123456789a" });
  assert.deepEqual(received(host, ann), [{ type: "error", reason: "room name is too long" }]);
  assert.deepEqual(host.groupsOf(ann), ["room:0123456789"]);
  assert.deepEqual(received(host, bob), [{ type: "presence", room: "0123456789", uid: "ann", event: "join" }]);
});

test("one room too many is answered with an error", () => {
  const host = new MockHost(chat).withMaxGroupsPerConnection(2);
  const ann = loggedIn(host, "ann");
  for (const room of ["a", "b", "c", "a"]) exchange(host, ann, { type: "join", room });
  const got = received(host, ann);
  assert.deepEqual(got.map((v) => v.type), ["joined", "joined", "error", "joined"]);
  assert.equal(got[2]?.reason, "too many rooms");
  assert.deepEqual(host.groupMembers("room:c"), []);
  // Leaving one makes room for another.
  exchange(host, ann, { type: "leave", room: "b" });
  exchange(host, ann, { type: "join", room: "c" });
  assert.equal(received(host, ann).at(-1)?.type, "joined");
});

test("a uid the gateway refuses is answered with an error and not logged in", () => {
  const host = new MockHost(chat).withMaxNameBytes(4);
  const conn = host.connect("/chat").unwrap();
  exchange(host, conn, { type: "login", uid: "alice" });
  assert.deepEqual(received(host, conn), [{ type: "error", reason: "uid is too long" }]);
  assert.equal(host.session(conn, "uid"), undefined);
  assert.equal(host.userOf(conn), undefined);
  exchange(host, conn, { type: "whoami" });
  assert.equal(received(host, conn)[0]?.reason, "log in first");
});

test("one timer too many is answered with an error", () => {
  const host = new MockHost(chat).withMaxTimers(1);
  const conn = loggedIn(host, "ann");
  exchange(host, conn, { type: "ticks", every_ms: 100 });
  exchange(host, conn, { type: "remind", after_ms: 50, text: "tea" });
  assert.deepEqual(received(host, conn), [{ type: "error", reason: "too many timers" }]);
  // The refused request changed nothing: the ticks still run.
  exchange(host, conn, { type: "ticks", every_ms: 10 });
  assert.equal(received(host, conn)[0]?.reason, "too many timers");
  host.advance(100);
  assert.deepEqual(received(host, conn), [{ type: "tick", n: 1 }]);
});
