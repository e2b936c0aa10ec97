// The misbehaving plugin on the mock host: what it does when it behaves (echo), and that `throw` throws.
// `loop` and `bomb` never return, so only the gateway tests them (tests/isolation.rs style, over real sockets).

import assert from "node:assert/strict";
import { test } from "node:test";
import { MockHost } from "wssgate/testing";
import plugin from "../src/plugin.ts";

test("echoes text and binary", () => {
  const host = new MockHost(plugin);
  const conn = host.connect("/misbehaving").unwrap();
  host.message(conn, "tom");
  host.message(conn, Uint8Array.from([1, 2, 255]));
  assert.deepEqual(host.takeSent(conn), ["tom", Uint8Array.from([1, 2, 255])]);
});

test("throw throws out of on-message, and the next client is still served", () => {
  const host = new MockHost(plugin);
  const conn = host.connect("/misbehaving").unwrap();
  assert.throws(() => host.message(conn, "throw"), /misbehaving-ts was asked to throw/);
  const next = host.connect("/misbehaving").unwrap();
  host.message(next, "still here");
  assert.deepEqual(host.takeSent(next), ["still here"]);
});
