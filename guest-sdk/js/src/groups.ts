// Groups (rooms, channels, topics) and broadcasts, like GatewayWorker's joinGroup / sendToGroup / sendToAll. Groups
// belong to the route and span the gateway's workers; join and leave with `conn.join` and `conn.leave`.

import type { Connection } from "./connection.ts";
import { host } from "./host.ts";
import type { Message } from "./message.ts";

/** Sends `message` to every member of `group` except `exclude`; returns how many members it was queued for here. */
export function publish(group: string, message: Message, exclude: Connection[] = []): number {
  return host().publish(group, message, exclude.map((c) => c.id));
}

/** How many connections are in `group` (cluster-wide, eventually). */
export function size(group: string): number {
  return host().groupSize(group);
}

/** Sends `message` to every open connection of the route except `exclude`; returns how many. */
export function broadcast(message: Message, exclude: Connection[] = []): number {
  return host().broadcast(message, exclude.map((c) => c.id));
}
