// The deferred test plugin on the SDK's mock host: every shared scenario (tests/scenarios/deferred.json), then what
// the scenarios cannot say (restarts, init's refusal and host calls, the log, a throwing handler).

import assert from "node:assert/strict";
import { test } from "node:test";
import { MockHost, loadScenarios, runScenario } from "wssgate/testing";
import { createDeferred } from "../src/plugin.ts";

const scenarios = loadScenarios(new URL("../../../scenarios/deferred.json", import.meta.url));

test("the scenario file has scenarios", () => {
  assert.ok(scenarios.length >= 8, `only ${scenarios.length} scenarios`);
});

for (const scenario of scenarios) {
  test(`scenario: ${scenario.name}`, () => runScenario(createDeferred, scenario));
}

test("init makes every host call without failing, and refuses when told to", () => {
  const host = new MockHost(createDeferred).withSetting("init", "host-calls");
  assert.equal(host.init(), undefined);
  assert.deepEqual(host.logs(), [["info", "init made every host call"]]);
  // The hour-long one-shot timer it started is still running; the repeating one was cancelled.
  assert.equal(host.runningTimers(), 1);
  const refusing = new MockHost(createDeferred).withSetting("init", "refuse");
  assert.equal(refusing.init(), "init was told to refuse");
  assert.throws(() => refusing.connect("/scenario"), /init refused the route's settings: init was told to refuse/);
});

test("a deferred connection accepted by its timer gets welcome first, and its timer is gone", () => {
  const host = new MockHost(createDeferred);
  const conn = host.connect("/scenario?accept=50").deferred();
  assert.equal(host.runningTimers(), 1);
  host.advance(49);
  assert.equal(host.status(conn)?.kind, "waiting");
  host.advance(1);
  assert.equal(host.status(conn)?.kind, "open");
  assert.deepEqual(host.takeSent(conn), ["welcome"]);
  assert.equal(host.runningTimers(), 0);
});

test("a client leaving while deferred ends the connection with 1006 and cancels its timer", () => {
  const host = new MockHost(createDeferred);
  const conn = host.connect("/scenario?accept=5000").deferred();
  host.clientClose(conn);
  assert.equal(host.runningTimers(), 0);
  assert.equal(host.states(), 0);
  const other = host.connect("/scenario").unwrap();
  host.message(other, "live");
  assert.deepEqual(host.takeSent(other), ["live 1"]);
});

test("a restart keeps open connections, rebuilds state, and closes one denied on restore with 1008", () => {
  const host = new MockHost(createDeferred);
  const kept = host.connect("/scenario").unwrap();
  const denied = host.connect("/scenario?deny-on-restore").unwrap();
  host.message(kept, "a");
  host.restart();
  assert.equal(host.status(kept)?.kind, "open");
  assert.deepEqual(host.closed(denied), { code: 1008, reason: "denied on restore" });
  host.message(kept, "count");
  assert.deepEqual(host.takeSent(kept), ["a", "count 0"]);
  host.message(kept, "live");
  assert.deepEqual(host.takeSent(kept), ["live 1"]);
});

test("log writes a line, panic throws out of the handler, and close makes the code sendable", () => {
  const host = new MockHost(createDeferred);
  const conn = host.connect("/scenario").unwrap();
  host.message(conn, "log");
  assert.deepEqual(host.takeSent(conn), ["logged"]);
  assert.deepEqual(host.logs(), [["info", "deferred logs a line"]]);
  assert.throws(() => host.message(conn, "panic"), /deferred was asked to panic/);
  host.message(conn, "close 4001");
  assert.deepEqual(host.closed(conn), { code: 4001, reason: "closed by plugin" });
});
