// A plugin that misbehaves on request, for the gateway's isolation tests: one connection's failure must close only
// that connection (1011) while the next client is served by a fresh instance.
//
// Accepts every upgrade. Text messages:
// - `throw`: throws from on-message (an uncaught exception: the instance traps);
// - `loop`: loops forever (the gateway's fuel or epoch limit must stop it);
// - `bomb`: allocates without bound, keeping every allocation reachable, until the instance's memory limit stops it;
// - anything else is echoed.
// (No `memory` message: StarlingMonkey exposes no heap statistics to JavaScript.)

import { definePlugin } from "wssgate";

/** What `bomb` allocated, kept reachable so the collector cannot free it. */
const hoard: string[][] = [];
/** What `loop` counts, forever. */
let spins = 0;

/** One MiB of distinct strings, so no engine can share them. */
function mebibyte(seed: number): string[] {
  const chunk: string[] = [];
  for (let i = 0; i < 1024; i += 1) chunk.push(`${seed}:${i}:`.padEnd(1024, "x"));
  return chunk;
}

export default definePlugin({
  onMessage(conn, _state, message) {
    if (message === "throw") throw new Error("misbehaving-ts was asked to throw");
    if (message === "loop") {
      // Deliberately endless: the gateway must interrupt it.
      for (;;) spins += 1;
    }
    if (message === "bomb") {
      // Deliberately unbounded: the gateway's memory limit must stop it.
      for (let seed = 0; ; seed += 1) {
        hoard.push(mebibyte(seed));
      }
    }
    conn.send(message);
  },
});
