// wssgate-build's refusals of a malformed plugin: each fails fast (before componentize-js runs) with a message that
// names the problem. Building real components is slow (tens of seconds), so the plugins' own `npm run build` and
// the repository's gateway tests cover that.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../bin/wssgate-build.mjs", import.meta.url));
const SDK = fileURLToPath(new URL("../src/index.ts", import.meta.url));

function build(source: string): { status: number | null; stderr: string; built: boolean } {
  const dir = mkdtempSync(join(tmpdir(), "wssgate-build-test-"));
  const plugin = join(dir, "plugin.ts");
  writeFileSync(plugin, source.replaceAll("SDK", JSON.stringify(SDK)));
  const output = join(dir, "out.wasm");
  const run = spawnSync(process.execPath, [CLI, plugin, output], { encoding: "utf8", timeout: 60_000 });
  const built = existsSync(output);
  rmSync(dir, { recursive: true, force: true });
  return { status: run.status, stderr: run.stderr, built };
}

test("a module without a default export is refused", () => {
  const run = build("export const plugin = {};\n");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /No matching export .* for import "default"/);
  assert.ok(!run.built);
});

test("a default export that is not a plugin is refused", () => {
  const run = build("export default 42;\n");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /must be the plugin object/);
});

test("a plugin whose callback is not a function is refused", () => {
  const run = build("import { definePlugin } from SDK;\nexport default definePlugin({ onMessage: 'echo' } as never);\n");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /onMessage must be a function/);
});

test("a plugin that does not compile is refused with the file and line", () => {
  const run = build("export default {\n  onMessage( {\n};\n");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /plugin\.ts:\d+:\d+: /);
});

test("the usage is shown for wrong arguments", () => {
  const run = spawnSync(process.execPath, [CLI], { encoding: "utf8", timeout: 60_000 });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /usage: wssgate-build <plugin.ts> <out.wasm>/);
});

test("a plugin that imports a node: module is refused, since the gateway has no Node", () => {
  const run = build("import { readFileSync } from 'node:fs';\nexport default { onMessage() { readFileSync('x'); } };\n");
  assert.equal(run.status, 1);
  assert.match(run.stderr, /node:fs/);
});

test("the world imports timers and http, and exports lifecycle, only for a plugin with their callbacks", async () => {
  const { worldOf, entryOf } = (await import(new URL("../bin/world.mjs", import.meta.url).href)) as {
    worldOf: (e: object) => string;
    entryOf: (plugin: string, glue: string, e: object, version: string) => string;
  };
  const none = { lifecycle: false, timerEvents: false, httpEvents: false, historyEvents: false, storageEvents: false };
  const bare = worldOf(none);
  assert.match(bare, /import host;/);
  assert.match(bare, /export connection-events;/);
  assert.doesNotMatch(bare, /timers|timer-events|http|lifecycle|history|storage/);
  assert.doesNotMatch(entryOf("/p.ts", "/g.ts", none, "1.2.0"), /wssgate:plugin\/(timers|http)/);
  const timersOnly = worldOf({ ...none, timerEvents: true });
  assert.match(timersOnly, /import timers;[\s\S]*export timer-events;/);
  assert.doesNotMatch(timersOnly, /http|lifecycle/);
  const all = worldOf({ lifecycle: true, timerEvents: true, httpEvents: true, historyEvents: false, storageEvents: false });
  for (const line of ["export lifecycle;", "import timers;", "export timer-events;", "import http;", "export http-events;"]) {
    assert.ok(all.includes(line), line);
  }
  const entry = entryOf("/p.ts", "/g.ts", { ...none, httpEvents: true }, "1.2.0");
  assert.match(entry, /import \* as http from "wssgate:plugin\/http@1.2.0";/);
  assert.match(entry, /export const httpEvents = exported.httpEvents;/);
  assert.doesNotMatch(entry, /export const (lifecycle|timerEvents)/);
});

test("the entry names its imports with the version of the checkout's contract", async () => {
  const { contractVersion } = (await import(new URL("../bin/world.mjs", import.meta.url).href)) as {
    contractVersion: (wit: string) => string;
  };
  const { readFileSync } = await import("node:fs");
  const wit = readFileSync(new URL("../../../wit/plugin.wit", import.meta.url), "utf8");
  assert.match(contractVersion(wit), /^1\.[0-9]+\.[0-9]+$/);
  assert.throws(() => contractVersion("package other:thing@1.0.0;"), /does not declare/);
});

test("the world imports history and storage, and exports their events, only for a plugin with their callbacks", async () => {
  const { worldOf, entryOf } = (await import(new URL("../bin/world.mjs", import.meta.url).href)) as {
    worldOf: (e: object) => string;
    entryOf: (plugin: string, glue: string, e: object, version: string) => string;
  };
  const { exportsOf } = await import("../src/plugin.ts");
  const none = exportsOf({ onMessage() {} });
  assert.deepEqual([none.historyEvents, none.storageEvents], [false, false]);
  assert.doesNotMatch(worldOf(none), /history|storage/);
  assert.doesNotMatch(entryOf("/p.ts", "/g.ts", none, "1.2.0"), /wssgate:plugin\/(history|storage)|historyEvents|storageEvents/);
  // Either callback of a pair brings its interface; the other pair stays out.
  for (const callback of ["onAppended", "onHistory"]) {
    const exports = exportsOf({ [callback]() {} });
    assert.deepEqual([exports.historyEvents, exports.storageEvents], [true, false]);
    const world = worldOf(exports);
    assert.match(world, /import history;[\s\S]*export history-events;/);
    assert.doesNotMatch(world, /storage/);
    const entry = entryOf("/p.ts", "/g.ts", exports, "1.2.0");
    assert.match(entry, /import \* as history from "wssgate:plugin\/history@1.2.0";/);
    assert.match(entry, /const storage = undefined;/);
    assert.match(entry, /export const historyEvents = exported.historyEvents;/);
    assert.doesNotMatch(entry, /storageEvents/);
  }
  for (const callback of ["onRead", "onWritten"]) {
    const exports = exportsOf({ [callback]() {} });
    assert.deepEqual([exports.historyEvents, exports.storageEvents], [false, true]);
    const world = worldOf(exports);
    assert.match(world, /import storage;[\s\S]*export storage-events;/);
    assert.doesNotMatch(world, /history/);
    const entry = entryOf("/p.ts", "/g.ts", exports, "1.2.0");
    assert.match(entry, /import \* as storage from "wssgate:plugin\/storage@1.2.0";/);
    assert.match(entry, /const history = undefined;/);
    assert.match(entry, /export const storageEvents = exported.storageEvents;/);
    assert.doesNotMatch(entry, /historyEvents/);
  }
  assert.throws(() => exportsOf({ onRead: "yes" }), /onRead must be a function/);
});
