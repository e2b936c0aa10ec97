// The route's `[route.settings]` table, as string keys and values: `init` receives them all, and any event can read
// them here.

import { host } from "./host.ts";

/** The value of `key`, if the route sets it. */
export function get(key: string): string | undefined {
  return host().setting(key);
}

/** Every setting, sorted by key. */
export function all(): Map<string, string> {
  return new Map(host().settings());
}
