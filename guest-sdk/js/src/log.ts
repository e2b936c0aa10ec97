// Lines for the gateway's log, tagged by the gateway with the route and plugin. It takes at most
// `max_plugin_log_lines_per_sec` lines a second from one instance (100 by default): `info` and friends drop a line
// past that silently, `tryLog` throws `Refused` "rate-limited".

import { Refused } from "./errors.ts";
import { host } from "./host.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/** Writes `message` at `level`, or throws `Refused` "rate-limited" when the gateway dropped it. */
export function tryLog(level: LogLevel, message: string): void {
  host().log(level, message);
}

/** Writes `message` at `level`; a line past the instance's rate is dropped. */
export function log(level: LogLevel, message: string): void {
  try {
    tryLog(level, message);
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
  }
}

export const trace = (message: string): void => log("trace", message);
export const debug = (message: string): void => log("debug", message);
export const info = (message: string): void => log("info", message);
export const warn = (message: string): void => log("warn", message);
export const error = (message: string): void => log("error", message);
