// User ids, like GatewayWorker's bindUid / sendToUid / isUidOnline: one user may have several connections (phone and
// desktop). Bind with `conn.bindUser`.

import { Connection } from "./connection.ts";
import { host } from "./host.ts";
import type { Message } from "./message.ts";

/** Sends `message` to every connection of user `uid`; returns how many. */
export function send(uid: string, message: Message): number {
  return host().sendToUser(uid, message);
}

/** Whether user `uid` has a connection on this route (cluster-wide, eventually). */
export function isOnline(uid: string): boolean {
  return host().isUserOnline(uid);
}

/** The connections of user `uid`. */
export function connections(uid: string): Connection[] {
  return host().connectionsOfUser(uid).map((id) => new Connection(id));
}
