// The scaffold template (template/, which `wssgate new NAME --lang ts` fills in): rendered into a folder outside the
// SDK with the SDK linked in as its dependency, its plugin passes its own unit tests, and every placeholder is filled.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SDK = fileURLToPath(new URL("..", import.meta.url));
const TEMPLATE = join(SDK, "template");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test("the template renders into a project whose tests pass on the mock host", (t) => {
  const project = mkdtempSync(join(tmpdir(), "wssgate-template-"));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  const rendered = files(TEMPLATE).map((path) => {
    const text = readFileSync(path, "utf8").replaceAll("{name}", "hello").replaceAll("{sdk}", SDK.replace(/\/$/, ""));
    const target = join(project, relative(TEMPLATE, path));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    return [relative(TEMPLATE, path), text] as const;
  });
  assert.deepEqual(rendered.map(([name]) => name).sort(), [
    ".gitignore",
    "config.toml",
    "package.json",
    "src/plugin.ts",
    "test/plugin.test.ts",
    "tsconfig.json",
  ]);
  for (const [name, text] of rendered) assert.doesNotMatch(text, /\{(name|sdk)\}/, name);
  const manifest = JSON.parse(readFileSync(join(project, "package.json"), "utf8"));
  assert.equal(manifest.dependencies.wssgate, `file:${SDK.replace(/\/$/, "")}`);
  assert.match(readFileSync(join(project, "config.toml"), "utf8"), /path = "\/hello"\nplugin = "dist\/hello.wasm"/);
  // What `npm install` makes of the file: dependency: a link to the SDK.
  mkdirSync(join(project, "node_modules"));
  symlinkSync(SDK, join(project, "node_modules", "wssgate"));
  const tsx = fileURLToPath(import.meta.resolve("tsx/cli"));
  // A test run inside a test run reports to its parent instead of printing, unless told it is on its own.
  const { NODE_TEST_CONTEXT: _nested, ...env } = process.env;
  const run = spawnSync(process.execPath, [tsx, "--test", "test/plugin.test.ts"], {
    cwd: project,
    env,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /# pass 2/);
});
