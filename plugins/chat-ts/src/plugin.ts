// A chat server as a wssgate plugin in TypeScript: the port of plugins/chat (Rust), the same protocol byte for byte
// (replies are JSON objects with their keys sorted, as serde_json writes them there).
//
// Every message is a JSON object with a `type`:
// - `{"type":"login","uid":"alice"}` binds the connection to a user (kept in the host-side session);
// - `{"type":"join","room":"lobby"}` / `{"type":"leave","room":"lobby"}`: the room's members get a `presence` event;
// - `{"type":"say","room":"lobby","text":"hi"}` reaches every member of the room once, the sender included;
// - `{"type":"dm","to":"bob","text":"hi"}` reaches every connection of user `bob`;
// - `{"type":"online","uid":"bob"}` answers how many connections user `bob` has;
// - `{"type":"whoami"}` answers the logged-in user, read back from the session;
// - `{"type":"remind","after_ms":500,"text":"tea"}` sends a `reminder` once (at most 8 waiting per connection, of
//   at most 1024 bytes each); `{"type":"ticks","every_ms":100}` sends `tick` events until `{"type":"stop_ticks"}`.
//
// Anything malformed, and anything the gateway refuses (a room or user name past `max_name_bytes`, one room past
// `max_groups_per_connection`, one timer past `max_timers_per_instance`), is answered with
// `{"type":"error","reason":...}`, never an exception.

import { Connection, Refused, Timer, accept, definePlugin, groups, timers, users } from "wssgate";
import { parseCommand, type Command } from "./protocol.ts";

/** What the plugin keeps per connection; the SDK drops it when the connection closes, and the gateway its timers. */
export interface Member {
  /** Reminders waiting to be sent, by timer id. */
  reminders: Map<string, string>;
  /** The running tick timer and how many ticks it sent. */
  ticks: { timer: Timer; count: number } | undefined;
}

/** The group name of a room (groups are the host's; rooms are this plugin's word for them). */
const group = (room: string): string => `room:${room}`;

const bytes = (text: string): number => new TextEncoder().encode(text).length;

/** Reminders one connection may have waiting, and the longest text of one: the plugin holds them until they fire. */
const MAX_REMINDERS = 8;
const MAX_REMINDER_BYTES = 1024;

/** JSON with the keys of every object sorted, as serde_json writes a `json!` value. */
export function encode(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function send(conn: Connection, value: object): void {
  try {
    conn.send(encode(value));
  } catch (err) {
    // A refused send means the client is gone or too slow; the gateway is closing it.
    if (!(err instanceof Refused)) throw err;
  }
}

function error(conn: Connection, reason: string): void {
  send(conn, { type: "error", reason });
}

/** Answers a call the gateway refused, in the protocol's words where it has them. */
function refused(conn: Connection, err: unknown): void {
  if (!(err instanceof Refused)) throw err;
  if (err.refusal === "too-many-groups") return error(conn, "too many rooms");
  if (err.refusal === "too-many-timers") return error(conn, "too many timers");
  error(conn, err.message);
}

function handle(conn: Connection, member: Member, command: Command): void {
  const uid = conn.sessionGet("uid") ?? null;
  if (command.type === "login") {
    if (command.uid.length === 0 || bytes(command.uid) > 64) return error(conn, "uid must be 1 to 64 bytes");
    try {
      conn.bindUser(command.uid);
    } catch (err) {
      if (err instanceof Refused && err.refusal === "name-too-long") return error(conn, "uid is too long");
      return refused(conn, err);
    }
    try {
      conn.sessionSet("uid", command.uid);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      return error(conn, "session unavailable");
    }
    return send(conn, { type: "login", uid: command.uid, connection: conn.id });
  }
  if (uid === null) return error(conn, "log in first");
  switch (command.type) {
    case "join": {
      const { room } = command;
      if (room.length === 0 || bytes(room) > 64) return error(conn, "room must be 1 to 64 bytes");
      try {
        conn.join(group(room));
      } catch (err) {
        if (err instanceof Refused && err.refusal === "name-too-long") return error(conn, "room name is too long");
        return refused(conn, err);
      }
      groups.publish(group(room), encode({ type: "presence", room, uid, event: "join" }), [conn]);
      return send(conn, { type: "joined", room, members: groups.size(group(room)) });
    }
    case "leave": {
      const { room } = command;
      if (!conn.groups().includes(group(room))) return error(conn, "not in that room");
      conn.leave(group(room));
      groups.publish(group(room), encode({ type: "presence", room, uid, event: "leave" }));
      return send(conn, { type: "left", room });
    }
    case "say": {
      const { room, text } = command;
      if (!conn.groups().includes(group(room))) return error(conn, "join the room first");
      groups.publish(group(room), encode({ type: "say", room, from: uid, text }));
      return;
    }
    case "dm":
      // Whether the user is online anywhere in the cluster: `users.send` counts this node only.
      if (!users.isOnline(command.to)) return error(conn, "that user is not online");
      users.send(command.to, encode({ type: "dm", from: uid, text: command.text }));
      return;
    case "online":
      return send(conn, { type: "online", uid: command.uid, connections: users.connections(command.uid).length });
    case "whoami":
      return send(conn, { type: "whoami", uid });
    case "remind":
      if (bytes(command.text) > MAX_REMINDER_BYTES) return error(conn, "a reminder's text is at most 1024 bytes");
      if (member.reminders.size >= MAX_REMINDERS) return error(conn, "at most 8 reminders may wait");
      try {
        member.reminders.set(timers.after(command.after_ms, conn).id, command.text);
      } catch (err) {
        refused(conn, err);
      }
      return;
    case "ticks": {
      if (command.every_ms < 10) return error(conn, "every_ms must be at least 10");
      let timer: Timer;
      try {
        timer = timers.every(command.every_ms, conn);
      } catch (err) {
        return refused(conn, err);
      }
      member.ticks?.timer.cancel();
      member.ticks = { timer, count: 0 };
      return;
    }
    case "stop_ticks":
      member.ticks?.timer.cancel();
      member.ticks = undefined;
      return send(conn, { type: "ticks_stopped" });
  }
}

export default definePlugin<Member>({
  onConnect() {
    return accept({ reminders: new Map(), ticks: undefined });
  },

  onMessage(conn, member, message) {
    if (typeof message !== "string") return error(conn, "messages are JSON text");
    const parsed = parseCommand(message);
    if (typeof parsed === "string") return error(conn, `bad message: ${parsed}`);
    handle(conn, member, parsed);
  },

  onClose(conn) {
    const uid = conn.sessionGet("uid") ?? null;
    for (const roomGroup of conn.groups()) {
      const room = roomGroup.startsWith("room:") ? roomGroup.slice(5) : roomGroup;
      groups.publish(roomGroup, encode({ type: "presence", room, uid, event: "leave" }), [conn]);
    }
  },

  onTimer(timer, members) {
    const conn = timer.owner;
    if (conn === undefined) return;
    const member = members.get(conn);
    if (member === undefined) return;
    const reminder = member.reminders.get(timer.id);
    if (reminder !== undefined) {
      member.reminders.delete(timer.id);
      send(conn, { type: "reminder", text: reminder });
    } else if (member.ticks?.timer.equals(timer)) {
      member.ticks.count += 1;
      send(conn, { type: "tick", n: member.ticks.count });
    }
  },
});
