// wssgate/testing: a mock of the gateway for unit tests of a plugin in plain Node: no wasm, no sockets.
//
// The mock runs the plugin through the same runtime as the gateway's glue (init, per-connection state, the optional
// events) and answers its host calls with the gateway's rules:
// - init runs before the first event (`init()` runs it explicitly and returns its refusal);
// - on-connect may accept, reject or defer; a deferred connection waits (status "waiting") until the plugin calls
//   accept or reject, or until the accept timeout (10 s, `withAcceptTimeout`) answers 504 as the mock's clock passes
//   it; it ends with on-close (1006) when it never opens;
// - on-close follows a close the plugin asked for, with the code made sendable (1008 for 1005, 1006, 1015 or
//   anything outside 1000–4999) and the reason cut to 123 bytes; sends to closed connections are refused;
// - a connection's outbound queue holds what the test has not taken yet: a send past 1 MiB is refused
//   ("queue-full") and closes the connection with 1008;
// - `restart()` replaces the instance as the gateway does after a failure: a fresh plugin (from the factory the mock
//   was given), init, on-connect replayed with `restored` for every connection, the old timers and requests gone;
// - timers run on a clock only `advance` moves; HTTP requests wait until the test answers them (`respond`, `fail`);
// - groups, users, broadcasts and sessions work as in the gateway (one worker, one route), with its default caps,
//   which the `withMax*` builders change. Log lines are never rate limited;
// - history and storage (contract 1.2) are kept in memory for the route once a test gives it their tables
//   (`withHistory`, `withStorage`; without, calls are refused "not-configured"), with the contract's rules: the store
//   answers each request at once, and its event follows when the current event returns (after the on-close calls
//   it caused), in the order the requests were made. A request owned by a connection loses its event when that
//   connection ends first (the write is kept); `restart()` drops every event still due. Retention and time to live
//   follow the mock's clock, which starts at 0 ms; `failStore` makes the store fail ("unavailable"), and
//   `resetHistory` loses the history as a store that lost its data.
// An exception a plugin callback throws reaches the test (the gateway would close the connection with 1011).

import { Connection } from "../connection.ts";
import type { HistoryEntry } from "../history.ts";
import { setHost } from "../host.ts";
import { HttpResponse, type HttpError, type HttpRequest, type HttpResult, Sent } from "../http.ts";
import type { LogLevel } from "../log.ts";
import { StorageRequest } from "../memory.ts";
import type { CloseFrame, Message, Request } from "../message.ts";
import { exportsOf, type Plugin } from "../plugin.ts";
import { type Answer, Runtime } from "../runtime.ts";
import { StoredValue } from "../storage.ts";
import { Timer } from "../timers.ts";
import { DEFAULT_HISTORY, type HistoryConfig } from "./history.ts";
import { cutUtf8, gatewayRejection, MockState, type Rejection, type Status } from "./state.ts";
import { DEFAULT_STORAGE, type StorageConfig } from "./storage.ts";

export { HttpResponse, StoredValue };
export type { HistoryConfig, Rejection, Status, StorageConfig };
export { runScenario, loadScenarios, SCENARIO_PATH, type Scenario, type Step } from "./scenario.ts";

/** How many history and storage events one step of a test delivers at most, answers to answers included. */
const MAX_CHAINED_ANSWERS = 100_000;

/** How an upgrade was answered by the time `connect` returned. */
export class Upgrade {
  readonly kind: "accepted" | "deferred" | "rejected";
  readonly connection: Connection | undefined;
  readonly rejection: Rejection | undefined;

  constructor(kind: "accepted" | "deferred", connection: Connection);
  constructor(kind: "rejected", rejection: Rejection);
  constructor(kind: Upgrade["kind"], value: Connection | Rejection) {
    this.kind = kind;
    this.connection = value instanceof Connection ? value : undefined;
    this.rejection = value instanceof Connection ? undefined : value;
  }

  /** The connection, which must have been accepted. */
  unwrap(): Connection {
    if (this.kind !== "accepted") throw new Error(`the upgrade was not accepted: ${this.#describe()}`);
    return this.connection as Connection;
  }

  /** The connection, which must have been deferred. */
  deferred(): Connection {
    if (this.kind !== "deferred") throw new Error(`the upgrade was not deferred: ${this.#describe()}`);
    return this.connection as Connection;
  }

  /** The rejection, which there must have been. */
  rejected(): Rejection {
    if (this.kind !== "rejected") throw new Error(`the upgrade was not rejected: ${this.#describe()}`);
    return this.rejection as Rejection;
  }

  #describe(): string {
    return this.kind === "rejected" ? `rejected with ${this.rejection?.status} ${JSON.stringify(this.rejection?.body)}` : this.kind;
  }
}

/** A request for `target` (a path, with a `?query` if any) from 127.0.0.1, with `fields` on top. */
export function request(target: string, fields: Partial<Request> = {}): Request {
  const at = target.indexOf("?");
  return {
    path: at < 0 ? target : target.slice(0, at),
    query: at < 0 ? "" : target.slice(at + 1),
    headers: [],
    remoteAddress: "127.0.0.1:40000",
    subprotocol: undefined,
    restored: false,
    ...fields,
  };
}

/** A simulated gateway running one instance of a plugin. Drive the plugin through it and inspect what it did. */
export class MockHost<S> {
  readonly #state = new MockState();
  readonly #create: () => Plugin<S>;
  #runtime: Runtime<S>;
  #nextId = 0;
  #started = false;

  /**
   * A mock running `plugin`. Give a function that makes the plugin to have `restart` start a fresh one, as the
   * gateway's replacement instance would (a plugin object is reused as it is).
   */
  constructor(plugin: Plugin<S> | (() => Plugin<S>)) {
    this.#create = typeof plugin === "function" ? plugin : () => plugin;
    this.#runtime = this.#fresh();
  }

  #fresh(): Runtime<S> {
    const plugin = this.#create();
    const exports = exportsOf(plugin);
    this.#state.timerEvents = exports.timerEvents;
    this.#state.httpEvents = exports.httpEvents;
    this.#state.historyEvents = exports.historyEvents;
    this.#state.storageEvents = exports.storageEvents;
    return new Runtime(plugin);
  }

  /** Adds a route setting: init receives it, and the plugin can read it with `settings.get`. */
  withSetting(key: string, value: string): this {
    this.#state.settingsTable.set(key, value);
    return this;
  }

  /** The longest group name, user id or session key accepted (`max_name_bytes`, default 256 bytes). */
  withMaxNameBytes(bytes: number): this {
    this.#state.limits.nameBytes = bytes;
    return this;
  }

  /** How many groups one connection may be in (`max_groups_per_connection`, default 64). */
  withMaxGroupsPerConnection(groups: number): this {
    this.#state.limits.groupsPerConnection = groups;
    return this;
  }

  /** How many timers may run at once (`max_timers_per_instance`, default 1024). */
  withMaxTimers(timers: number): this {
    this.#state.limits.timers = timers;
    return this;
  }

  /** How many bytes of keys and values one session may hold (default 64 KiB, the gateway's fixed limit). */
  withMaxSessionBytes(bytes: number): this {
    this.#state.limits.sessionBytes = bytes;
    return this;
  }

  /** How many bytes may wait for one client (`max_outbound_bytes`, default 1 MiB). */
  withMaxOutboundBytes(bytes: number): this {
    this.#state.limits.outboundBytes = bytes;
    return this;
  }

  /** How long a deferred upgrade waits for its answer (the route's `accept_timeout_ms`, default 10 000). */
  withAcceptTimeout(ms: number): this {
    this.#state.limits.acceptTimeoutMs = ms;
    return this;
  }

  /** Grants the route upstream `name`; requests to any other are refused with "not-granted". */
  withUpstream(name: string): this {
    this.#state.upstreams.add(name);
    return this;
  }

  /** How many requests may wait for their answer at once (an upstream's `max_in_flight`, default 1024). */
  withMaxRequestsInFlight(requests: number): this {
    this.#state.limits.requestsInFlight = requests;
    return this;
  }

  /**
   * Gives the route a `[route.history]` table, each key missing from `config` at the gateway's default: without one,
   * history calls are refused with "not-configured", as the gateway refuses them.
   */
  withHistory(config: Partial<HistoryConfig> = {}): this {
    this.#state.historyConfig = { ...DEFAULT_HISTORY, ...config };
    return this;
  }

  /**
   * Gives the route a `[route.storage]` table, each key missing from `config` at the gateway's default: without one,
   * storage calls are refused with "not-configured", as the gateway refuses them.
   */
  withStorage(config: Partial<StorageConfig> = {}): this {
    this.#state.storageConfig = { ...DEFAULT_STORAGE, ...config };
    return this;
  }

  /**
   * How many history and storage requests may wait for their events at once (`max_storage_requests_per_instance`,
   * default 1024); one more is refused with "too-many-pending".
   */
  withMaxStorageRequests(requests: number): this {
    this.#state.limits.storeRequests = requests;
    return this;
  }

  /**
   * Makes the route's store fail: from now on every history and storage request the gateway takes is answered with
   * `{ kind: "unavailable", detail: reason }` and changes nothing, until this is called without a reason.
   */
  failStore(reason?: string): void {
    this.#state.storeFailure = reason;
  }

  /**
   * Loses the route's history, as a store whose data was lost or reset: every group starts a new epoch, at offset
   * 1, with its next append.
   */
  resetHistory(): void {
    this.#state.histories.clear();
  }

  /** The messages `group`'s history keeps now, oldest first. */
  history(group: string): HistoryEntry[] {
    const config = this.#state.historyConfig;
    if (config === undefined) return [];
    return [...this.#state.histories.read(config, group, undefined, config.size, this.#state.now).entries];
  }

  /** `group`'s current epoch; undefined when it has no history. */
  historyEpoch(group: string): string | undefined {
    const config = this.#state.historyConfig;
    if (config === undefined) return undefined;
    const epoch = this.#state.histories.read(config, group, undefined, 1, this.#state.now).epoch;
    return epoch === "" ? undefined : epoch;
  }

  /** A key's value as the store holds it now; undefined when it does not exist or has expired. */
  stored(key: string): StoredValue | undefined {
    return this.#state.keys.get(key, this.#state.now);
  }

  /**
   * Starts the instance: runs init with the route settings, once. Returns its refusal (the message the gateway would
   * refuse the config with), or undefined. Every other method starts the instance first, and throws if init refuses.
   */
  init(): string | undefined {
    if (this.#started) return undefined;
    const settings = new Map(this.#state.settings());
    this.#state.inInit = true;
    let refusal: string | undefined;
    try {
      refusal = this.#run((r) => r.init(settings));
    } finally {
      this.#state.inInit = false;
    }
    if (refusal === undefined) this.#started = true;
    return refusal;
  }

  #start(): void {
    const refusal = this.init();
    if (refusal !== undefined) throw new Error(`the plugin's init refused the route's settings: ${refusal}`);
  }

  /** Opens a connection to `target` (a path with an optional `?query`, or a full request) and runs on-connect. */
  connect(target: string | Request): Upgrade {
    this.#start();
    const req = typeof target === "string" ? request(target) : target;
    this.#nextId += 1;
    const id = String(this.#nextId);
    // Live while on-connect runs, so it can start timers for it and join groups.
    this.#state.status.set(id, { kind: "connecting" });
    this.#state.requests.set(id, req);
    // The verdict takes effect before the events due after on-connect run, as in the gateway: a deferred connection
    // can be accepted from them, and a rejected one's requests get none.
    const answer = this.#run((r) => {
      const verdict = r.connect(id, req);
      this.#settle(id, verdict);
      return verdict;
    });
    const status = this.#state.status.get(id);
    if (status?.kind === "rejected") return new Upgrade("rejected", status.rejection);
    return new Upgrade(answer.kind === "defer" ? "deferred" : "accepted", new Connection(id));
  }

  /** What on-connect's `answer` makes of connection `id`, unless the plugin closed it while on-connect ran. */
  #settle(id: string, answer: Answer): void {
    // Closed while on-connect ran (the plugin's own close): refused whatever it answered.
    if (this.#state.status.get(id)?.kind === "rejected") return;
    switch (answer.kind) {
      case "accept":
        this.#state.status.set(id, { kind: "open" });
        break;
      case "defer":
        this.#state.status.set(id, { kind: "waiting" });
        this.#state.acceptDeadlines.set(id, this.#state.now + this.#state.limits.acceptTimeoutMs);
        break;
      case "reject":
        this.#state.status.set(id, { kind: "rejected", rejection: gatewayRejection(answer.status, answer.body) });
        this.#state.forget(id);
        break;
    }
  }

  /** Delivers a message from the client (none is delivered before the upgrade is accepted). */
  message(conn: Connection, message: Message): void {
    this.#start();
    const kind = this.status(conn)?.kind;
    if (kind === "waiting") {
      throw new Error(`connection ${conn.id} waits for its accept: the gateway delivers no message before it`);
    }
    // A client cannot send on a connection that is gone.
    if (kind !== "open") return;
    this.#run((r) => r.message(conn.id, message));
  }

  /** The client closes with `code` and `reason` (or leaves while its upgrade waits): runs on-close. */
  clientClose(conn: Connection, code = 1000, reason = ""): void {
    const kind = this.status(conn)?.kind;
    let frame: CloseFrame;
    if (kind === "open") frame = { code, reason };
    else if (kind === "waiting") frame = { code: 1006, reason: "client left" };
    else return;
    this.#state.acceptDeadlines.delete(conn.id);
    this.#state.status.set(conn.id, { kind: "closed", frame });
    this.#state.pendingClose.push([conn.id, frame]);
    this.#run(() => undefined);
  }

  /** Moves the mock's clock forward by `ms`, firing every timer and accept timeout due on the way, in order. */
  advance(ms: number): void {
    this.#start();
    const state = this.#state;
    const until = state.now + ms;
    // Bounded: a repeating timer has a period of at least 1 ms.
    for (let round = 0; round < 1_000_000; round += 1) {
      let timeout: [number, string] | undefined;
      for (const [id, due] of state.acceptDeadlines) {
        if (due <= until && (timeout === undefined || due < timeout[0])) timeout = [due, id];
      }
      let nextTimer: number | undefined;
      for (const timer of state.timers.values()) {
        if (timer.due <= until && (nextTimer === undefined || timer.due < nextTimer)) nextTimer = timer.due;
      }
      if (timeout !== undefined && (nextTimer === undefined || timeout[0] <= nextTimer)) {
        state.now = Math.max(state.now, timeout[0]);
        const rejection = gatewayRejection(504, "the server did not answer the upgrade in time\n");
        state.end(timeout[1], { code: 1006, reason: "accept timed out" }, rejection);
        this.#run(() => undefined);
      } else if (nextTimer !== undefined) {
        const fired = state.nextDueTimer(until);
        if (fired !== undefined) {
          const [id, owner] = fired;
          const timer = new Timer(id, owner === undefined ? undefined : new Connection(owner));
          this.#run((r) => r.timer(timer));
        }
      } else {
        break;
      }
    }
    state.now = Math.max(state.now, until);
  }

  /**
   * Replaces the instance as the gateway does after a failure: the old plugin's timers and requests are gone, a fresh
   * plugin starts with init, and on-connect is replayed (with `restored`) for every connection, which rebuilds their
   * state. A replayed rejection closes an open connection with 1008.
   */
  restart(): void {
    this.#runtime = this.#fresh();
    this.#state.timers.clear();
    this.#state.outbound.clear();
    // The old instance's history and storage events die with it (its writes are kept).
    this.#state.answers = [];
    this.#started = false;
    this.#start();
    const live = [...this.#state.status].filter(([, s]) => s.kind === "open" || s.kind === "waiting");
    for (const [id, status] of live) {
      const original = this.#state.requests.get(id);
      if (original === undefined) continue;
      // As for a connect, the replay's verdict takes effect before the events due after it.
      this.#run((r) => this.#replayed(id, status, r.connect(id, { ...original, restored: true })));
    }
  }

  /** What a replayed on-connect's `answer` makes of connection `id`, which was `before`. */
  #replayed(id: string, before: Status, answer: Answer): void {
    if (answer.kind === "accept" && before.kind === "waiting") {
      this.#state.acceptDeadlines.delete(id);
      this.#state.status.set(id, { kind: "open" });
    } else if (answer.kind === "reject" && before.kind === "waiting") {
      this.#state.end(id, { code: 1006, reason: "rejected" }, gatewayRejection(answer.status, answer.body));
    } else if (answer.kind === "reject") {
      this.#state.end(id, { code: 1008, reason: cutUtf8(answer.body, 123) });
    }
    // The replay rejected it: the fresh instance holds no state for it, so no on-close is due.
    this.#state.pendingClose = this.#state.pendingClose.filter(([c]) => c !== id);
    const now = this.#state.status.get(id)?.kind;
    if (now !== "open" && now !== "waiting") this.#state.forget(id);
  }

  /** Where `conn` is in its life; undefined for a connection the mock never saw. */
  status(conn: Connection): Status | undefined {
    return this.#state.status.get(conn.id);
  }

  /** How many timers are running. */
  runningTimers(): number {
    return this.#state.timers.size;
  }

  /** The groups `conn` is in, sorted. */
  groupsOf(conn: Connection): string[] {
    return this.#state.groupsOf(conn.id);
  }

  /** The user `conn` is bound to, if any. */
  userOf(conn: Connection): string | undefined {
    return this.#state.users.get(conn.id);
  }

  /** The members of `group`. */
  groupMembers(group: string): Connection[] {
    return this.#state.groupMembers(group).map((id) => new Connection(id));
  }

  /** A session value, as the plugin stored it. */
  session(conn: Connection, key: string): string | undefined {
    return this.#state.sessionGet(conn.id, key);
  }

  /** Takes the messages the plugin sent to `conn` so far (the client reads them). */
  takeSent(conn: Connection): Message[] {
    const sent = this.#state.sent.get(conn.id) ?? [];
    this.#state.sent.delete(conn.id);
    return sent;
  }

  /** The close frame `conn` was closed with, if it was (by the plugin, the client or the gateway). */
  closed(conn: Connection): CloseFrame | undefined {
    const status = this.status(conn);
    return status?.kind === "closed" ? status.frame : undefined;
  }

  /** Every line the plugin logged, in order. */
  logs(): Array<[LogLevel, string]> {
    return [...this.#state.logs];
  }

  /** The plugin object the instance runs now. */
  plugin(): Plugin<S> {
    return this.#runtime.plugin;
  }

  /** The state the SDK keeps for `conn`: there from its accept (or deferral) until its on-close returned. */
  state(conn: Connection): S | undefined {
    return this.#runtime.connections.get(conn);
  }

  /** How many connections the SDK keeps state for. */
  states(): number {
    return this.#runtime.connections.size;
  }

  /** Makes host calls as the plugin would in an event (for tests of the SDK's calls themselves). */
  call<R>(f: () => R): R {
    this.#start();
    return this.#run(() => f());
  }

  /** The requests the plugin sent that wait for an answer, oldest first, each with the handle its answer carries. */
  httpRequests(): Array<[Sent, HttpRequest]> {
    return [...this.#state.outbound].map(([id, r]) => [new Sent(id, r.owner), r]);
  }

  /** Answers request `sent` with `response`: the plugin's onHttpResponse runs. */
  respond(sent: Sent, response: HttpResponse): void {
    this.#answer(sent, { ok: true, response });
  }

  /** Fails request `sent` with `error`: the plugin's onHttpResponse runs. */
  fail(sent: Sent, error: HttpError): void {
    this.#answer(sent, { ok: false, error });
  }

  #answer(sent: Sent, result: HttpResult): void {
    const pending = this.#state.outbound.get(sent.id);
    if (pending === undefined) {
      throw new Error(`request ${sent.id} is not waiting for an answer (it was answered or cancelled, or never sent)`);
    }
    this.#state.outbound.delete(sent.id);
    this.#run((r) => r.response(new Sent(sent.id, pending.owner), result));
  }

  /**
   * Runs one callback with this mock answering host calls, then the on-close calls due for connections that ended,
   * then the history and storage events that came due, each followed by the on-close calls it caused.
   */
  #run<R>(callback: (runtime: Runtime<S>) => R): R {
    const previous = setHost(this.#state);
    try {
      const result = callback(this.#runtime);
      this.#deliverCloses();
      // Bounded: a plugin that answers every answer with another request would never let the test go on.
      for (let round = 0; round < MAX_CHAINED_ANSWERS; round += 1) {
        const due = this.#state.answers.shift();
        if (due === undefined) return result;
        const request = new StorageRequest(due.id, due.owner === undefined ? undefined : new Connection(due.owner));
        const { answer } = due;
        if (answer.kind === "appended") this.#runtime.appended(request, answer.result);
        else if (answer.kind === "history") this.#runtime.history(request, answer.result);
        else if (answer.kind === "read") this.#runtime.read(request, answer.result);
        else this.#runtime.written(request, answer.result);
        this.#deliverCloses();
      }
      throw new Error(
        `the plugin made a history or storage request from each of ${MAX_CHAINED_ANSWERS} answers in a row: a loop?`,
      );
    } finally {
      setHost(previous);
    }
  }

  /** Runs on-close for the connections that ended, as the gateway does once the current event returned. */
  #deliverCloses(): void {
    // Bounded: each round ends connections that were live, and there are finitely many.
    for (let round = 0; round <= this.#nextId; round += 1) {
      const pending = this.#state.pendingClose;
      if (pending.length === 0) break;
      this.#state.pendingClose = [];
      for (const [id, frame] of pending) {
        try {
          this.#runtime.close(id, frame);
        } finally {
          this.#state.forget(id);
        }
      }
    }
  }
}
