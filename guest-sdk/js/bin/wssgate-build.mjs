#!/usr/bin/env node
// wssgate-build: makes a WebAssembly component of a TypeScript (or JavaScript) plugin.
//
//   wssgate-build src/plugin.ts dist/name.wasm
//
// 1. Bundles the plugin for Node and loads it, to check its default export is a plugin and to see which optional
//    callbacks it defines (init, onTimer, onHttpResponse, onAppended/onHistory, onRead/onWritten).
// 2. Writes a world that imports and exports only what those need (no `timers` import without onTimer, no `http`
//    without onHttpResponse, no `history` without onAppended or onHistory, no `storage` without onRead or onWritten,
//    no `lifecycle` export without init) next to a copy of the contract, and an entry that hands the raw imports to
//    the SDK's glue (src/wasm.ts).
// 3. Bundles that entry with esbuild (the contract's and WASI's imports stay external) and makes the component with
//    componentize-js, with its wasi:http features disabled (the gateway does not link wasi:http) and without AOT.

import { mkdtemp, mkdir, readFile, rm, writeFile, copyFile, stat } from "node:fs/promises";

/**
 * The component with a custom section `wssgate-language` saying `language`, right after its 8-byte header: the
 * gateway reads it for what differs by language (a JavaScript engine's heap needs a larger default memory cap).
 * A custom section is id 0, its size (LEB128), then its name (LEB128 length and bytes) and its contents.
 */
function withLanguage(component, language) {
  const leb = (n) => {
    const bytes = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n !== 0) byte |= 0x80;
      bytes.push(byte);
    } while (n !== 0);
    return bytes;
  };
  const name = Buffer.from("wssgate-language");
  const contents = Buffer.concat([Buffer.from(leb(name.length)), name, Buffer.from(language)]);
  const section = Buffer.concat([Buffer.from([0]), Buffer.from(leb(contents.length)), contents]);
  const bytes = Buffer.from(component);
  return Buffer.concat([bytes.subarray(0, 8), section, bytes.subarray(8)]);
}
import { existsSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { contractVersion, entryOf, worldOf } from "./world.mjs";

/** The SDK's folder (guest-sdk/js), through any symlink a `file:` dependency made. */
const SDK = dirname(dirname(realpathSync(fileURLToPath(import.meta.url))));

/** componentize-js's features that pull in wasi:http, which the gateway does not link. */
const DISABLED_FEATURES = ["http", "fetch-event"];

class BuildError extends Error {}

function usage() {
  return "usage: wssgate-build <plugin.ts> <out.wasm>";
}

/** The folder of package `name` as node would find it from `from` (walking up node_modules folders), if any. */
function packageDir(name, from) {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Loads a build dependency: the project's own copy first (a scaffold lists them), else the SDK's. */
async function load(name, mainOf) {
  for (const from of [process.cwd(), SDK]) {
    const dir = packageDir(name, from);
    if (dir === undefined) continue;
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
    return import(pathToFileURL(join(dir, mainOf(manifest))).href);
  }
  throw new BuildError(`cannot find ${name}: run \`npm install\` first (the SDK depends on it)`);
}

/** The contract: the checkout's wit/plugin.wit, which guest-sdk/js sits two folders below. */
function contractPath() {
  const path = join(SDK, "..", "..", "wit", "plugin.wit");
  if (!existsSync(path)) {
    throw new BuildError(`cannot find the plugin contract at ${path}: the SDK must stay in its wssgate checkout`);
  }
  return path;
}

/** Bundles `entry` into `outfile`; esbuild's own errors name the file and line. */
async function bundle(esbuild, entry, outfile, platform) {
  try {
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: "esm",
      platform,
      target: "es2022",
      external: ["wssgate:*", "wasi:*"],
      logLevel: "silent",
    });
  } catch (err) {
    const messages = (err.errors ?? []).map((e) => {
      const where = e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : "";
      return `${where}${e.text}`;
    });
    throw new BuildError(messages.length > 0 ? messages.join("\n") : String(err));
  }
}

/** Loads the plugin in Node to check it and read which optional callbacks it defines. */
async function probe(esbuild, plugin, work) {
  const entry = join(work, "probe.ts");
  await writeFile(
    entry,
    `import plugin from ${JSON.stringify(plugin)};\n` +
      `import { exportsOf } from ${JSON.stringify(join(SDK, "src", "plugin.ts"))};\n` +
      `export const exports = exportsOf(plugin);\n`,
  );
  const outfile = join(work, "probe.mjs");
  await bundle(esbuild, entry, outfile, "node");
  try {
    return (await import(pathToFileURL(outfile).href)).exports;
  } catch (err) {
    throw new BuildError(`${plugin} is not a plugin: ${err instanceof Error ? err.message : err}`);
  }
}

async function main(args) {
  if (args.length !== 2 || args.some((a) => a.startsWith("-"))) throw new BuildError(usage());
  const plugin = resolve(args[0]);
  const output = resolve(args[1]);
  if (!existsSync(plugin) || !(await stat(plugin)).isFile()) throw new BuildError(`no such plugin file: ${args[0]}`);
  if (!output.endsWith(".wasm")) throw new BuildError(`the output should be a .wasm file, not ${args[1]}`);

  const esbuildModule = await load("esbuild", (m) => m.main);
  const esbuild = esbuildModule.default ?? esbuildModule;
  const { componentize } = await load("@bytecodealliance/componentize-js", (m) => m.exports.import);
  const work = await mkdtemp(join(tmpdir(), "wssgate-build-"));
  try {
    const started = Date.now();
    const exports = await probe(esbuild, plugin, work);
    const wit = join(work, "wit");
    await mkdir(wit);
    await copyFile(contractPath(), join(wit, "plugin.wit"));
    await writeFile(join(wit, "world.wit"), worldOf(exports));
    const version = contractVersion(await readFile(contractPath(), "utf8"));
    const entry = join(work, "entry.ts");
    await writeFile(entry, entryOf(plugin, join(SDK, "src", "wasm.ts"), exports, version));
    const bundled = join(work, "plugin.js");
    await bundle(esbuild, entry, bundled, "neutral");
    let component;
    try {
      ({ component } = await componentize({
        sourcePath: bundled,
        witPath: wit,
        worldName: "wssgate-build",
        disableFeatures: DISABLED_FEATURES,
      }));
    } catch (err) {
      throw new BuildError(`componentize-js refused the plugin: ${err instanceof Error ? err.message : err}`);
    }
    await mkdir(dirname(output), { recursive: true });
    await writeFile(output, withLanguage(component, "javascript"));
    const optional = Object.entries(exports).filter(([, on]) => on).map(([name]) => name);
    console.log(
      `wssgate-build: ${args[1]} (${(component.length / 1048576).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(0)} s; ` +
        `optional exports: ${optional.length > 0 ? optional.join(", ") : "none"})`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`wssgate-build: ${err instanceof BuildError ? err.message : err?.stack ?? err}`);
  process.exit(1);
});
