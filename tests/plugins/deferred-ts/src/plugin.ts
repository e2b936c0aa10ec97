// The deferred test plugin in TypeScript: a port of tests/plugins/deferred (Rust), behaviour for behaviour, so the
// shared scenarios (tests/scenarios/deferred.json) pass on the mock host and on the gateway alike.
//
// The upgrade's query decides its answer:
// - `accept=MS`: defers, then after MS sends `welcome` and accepts (a timer the connection owns);
// - `reject=MS&status=S`: defers, then after MS rejects with status S;
// - `wait`: defers and never answers (the route's accept timeout answers 504);
// - `deny`: rejects at once with 401;
// - `close`: closes the connection from on-connect and accepts it (the close wins: 403);
// - `accept-now`: calls `accept` from on-connect (refused: nothing is deferred yet), accepts, and answers `note`
//   with what `accept` did (`accepted`, or `refused: ` and the refusal's WIT name);
// - `deny-on-restore`: accepts, but rejects (403) when on-connect is replayed into a replacement instance;
// - anything else: accepts at once.
//
// With the setting `init = "host-calls"`, `init` makes every kind of host call before any connection exists (they
// must be refused or answered, never fail), and with `init = "refuse"` it refuses the settings.
//
// Messages: `count` answers how many messages the connection sent before (its own state); `live` answers how many
// connections the instance holds state for (from on-connect to on-close); `log` writes a log line; `panic` throws
// (the instance is replaced); `close CODE` closes the connection with CODE; anything else is echoed.

import {
  Connection,
  Refused,
  accept,
  defer,
  definePlugin,
  groups,
  log,
  reject,
  settings,
  timers,
  users,
  type Plugin,
  type Verdict,
} from "wssgate";

/** What the plugin keeps per connection. */
interface Client {
  /** Messages received so far. */
  messages: number;
  /** The answer to give when the connection's timer fires (while deferred). */
  answer: { accept: true } | { accept: false; status: number } | undefined;
  /** What on-connect noted, for the `note` message. */
  note: string;
}

function client(fields: Partial<Client> = {}): Client {
  return { messages: 0, answer: undefined, note: "", ...fields };
}

/** The value of `key` in a `k=v&k=v` query, undecoded, like the Rust plugin's. */
function param(query: string, key: string): string | undefined {
  for (const pair of query.split("&")) {
    const at = pair.indexOf("=");
    if (at >= 0 && pair.slice(0, at) === key) return pair.slice(at + 1);
  }
  return undefined;
}

/** Milliseconds from a query value; 0 for anything that is not a whole number (as the Rust plugin's parse does). */
function millis(value: string): number {
  return /^\d+$/.test(value) ? Number(value) : 0;
}

/** A status from a query value, when it is a u16 (else the Rust plugin's default applies). */
function status(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) && Number(value) <= 0xffff ? Number(value) : undefined;
}

/** Runs `call`, ignoring a refusal (the Rust plugin's `let _ =`). */
function ignoreRefusal(call: () => unknown): void {
  try {
    call();
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
  }
}

/** Every kind of host call, made from `init`: a connection that does not exist yet, an empty route, a timer. */
function hostCallsFromInit(): void {
  const nobody = new Connection("18446744073709551615");
  ignoreRefusal(() => nobody.send("hello"));
  nobody.close(1000, "bye");
  ignoreRefusal(() => nobody.accept());
  ignoreRefusal(() => nobody.reject(401, "no"));
  ignoreRefusal(() => nobody.join("g"));
  nobody.leave("g");
  nobody.groups();
  ignoreRefusal(() => nobody.bindUser("u"));
  nobody.unbindUser();
  ignoreRefusal(() => nobody.sessionSet("k", "v"));
  nobody.sessionGet("k");
  nobody.sessionRemove("k");
  nobody.info();
  groups.publish("g", "x");
  groups.size("g");
  groups.broadcast("x");
  users.send("u", "x");
  users.isOnline("u");
  users.connections("u");
  settings.all();
  log.info("init made every host call");
  const timer = timers.every(3_600_000);
  timer.cancel();
  timers.after(3_600_000);
}

/** A fresh plugin (the gateway starts one per instance; tests restart the mock with a fresh one). */
export function createDeferred(): Plugin<Client> {
  /** Connections with state: accepted or waiting for their answer. */
  let live = 0;
  return definePlugin<Client>({
    init(routeSettings) {
      switch (routeSettings.get("init")) {
        case "host-calls":
          return hostCallsFromInit();
        case "refuse":
          throw new Error("init was told to refuse");
      }
    },

    onConnect(conn, request): Verdict<Client> {
      const query = request.query;
      if (query === "deny-on-restore" && request.restored) return reject(403, "denied on restore");
      let delay: number;
      let answer: Client["answer"];
      const acceptAfter = param(query, "accept");
      const rejectAfter = param(query, "reject");
      if (acceptAfter !== undefined) {
        delay = millis(acceptAfter);
        answer = { accept: true };
      } else if (rejectAfter !== undefined) {
        delay = millis(rejectAfter);
        answer = { accept: false, status: status(param(query, "status")) ?? 403 };
      } else if (query === "wait") {
        live += 1;
        return defer(client());
      } else if (query === "deny") {
        return reject(401, "no token");
      } else if (query === "close") {
        conn.close(4000, "changed its mind");
        live += 1;
        return accept(client());
      } else if (query === "accept-now") {
        live += 1;
        let note = "accepted";
        try {
          conn.accept();
        } catch (err) {
          if (!(err instanceof Refused)) throw err;
          note = `refused: ${err.refusal}`;
        }
        return accept(client({ note }));
      } else {
        live += 1;
        return accept(client());
      }
      if (request.restored) {
        // Replayed into a fresh instance: an open connection stays open.
        live += 1;
        return accept(client());
      }
      try {
        timers.after(delay, conn);
      } catch (err) {
        if (err instanceof Refused) return reject(503, err.message);
        throw err;
      }
      live += 1;
      return defer(client({ answer }));
    },

    onMessage(conn, state, message) {
      let reply: string;
      if (message === "count") reply = `count ${state.messages}`;
      else if (message === "live") reply = `live ${live}`;
      else if (message === "note") reply = state.note;
      else if (message === "panic") throw new Error("deferred was asked to panic");
      else if (message === "log") {
        log.info("deferred logs a line");
        reply = "logged";
      } else if (typeof message === "string" && message.startsWith("close ")) {
        const code = status(message.slice(6));
        conn.close(code ?? 1000, "closed by plugin");
        return;
      } else {
        state.messages += 1;
        ignoreRefusal(() => conn.send(message));
        return;
      }
      state.messages += 1;
      ignoreRefusal(() => conn.send(reply));
    },

    onClose() {
      live -= 1;
    },

    onTimer(timer, clients) {
      const conn = timer.owner;
      if (conn === undefined) return;
      const state = clients.get(conn);
      if (state === undefined) return;
      const answer = state.answer;
      state.answer = undefined;
      if (answer === undefined) return;
      if (answer.accept) {
        // Queued while the upgrade waits: the client reads it right after its 101.
        ignoreRefusal(() => conn.send("welcome"));
        ignoreRefusal(() => conn.accept());
      } else {
        ignoreRefusal(() => conn.reject(answer.status, "rejected later"));
      }
    },
  });
}

export default createDeferred();
