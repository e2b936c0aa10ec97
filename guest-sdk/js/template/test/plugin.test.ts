// Unit tests of the {name} plugin on the SDK's mock gateway: plain Node, no wasm, no sockets.

import assert from "node:assert/strict";
import { test } from "node:test";
import { MockHost } from "wssgate/testing";
import plugin from "../src/plugin.ts";

test("echoes what a client sends", () => {
  const host = new MockHost(plugin);
  const conn = host.connect("/{name}").unwrap();
  host.message(conn, "tom");
  host.message(conn, Uint8Array.from([1, 2, 3]));
  assert.deepEqual(host.takeSent(conn), ["tom", Uint8Array.from([1, 2, 3])]);
});

test("counts each connection's messages separately", () => {
  const host = new MockHost(plugin);
  const ann = host.connect("/{name}").unwrap();
  const bob = host.connect("/{name}").unwrap();
  host.message(ann, "hi");
  host.message(ann, "count");
  host.message(bob, "count");
  assert.deepEqual(host.takeSent(ann), ["hi", "count 1"]);
  assert.deepEqual(host.takeSent(bob), ["count 0"]);
});
