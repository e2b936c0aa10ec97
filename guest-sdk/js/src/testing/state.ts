// What the mock gateway records while a plugin runs, and its side of every host call: the same `HostCalls` the wasm
// imports implement, with the gateway's rules and default caps.

import { Refused } from "../errors.ts";
import type { AppendResult, HistoryResult, Position } from "../history.ts";
import type { HostCalls } from "../host.ts";
import type { HttpRequest } from "../http.ts";
import type { LogLevel } from "../log.ts";
import type { StorageError } from "../memory.ts";
import { byteLength, type CloseFrame, type ConnectionInfo, type Message, type Request } from "../message.ts";
import type { ReadResult, WriteResult } from "../storage.ts";
import { Histories, type HistoryConfig } from "./history.ts";
import { Keys, type StorageConfig, type Write } from "./storage.ts";

/** An HTTP answer refusing an upgrade, as the client sees it. */
export interface Rejection {
  status: number;
  body: string;
}

/** Where a connection is in its life. */
export type Status =
  | { kind: "connecting" }
  | { kind: "waiting" }
  | { kind: "open" }
  | { kind: "closed"; frame: CloseFrame }
  | { kind: "rejected"; rejection: Rejection };

/** The caps the gateway enforces, with its defaults. */
export interface Limits {
  nameBytes: number;
  groupsPerConnection: number;
  timers: number;
  sessionBytes: number;
  outboundBytes: number;
  acceptTimeoutMs: number;
  requestsInFlight: number;
  requestBytes: number;
  storeRequests: number;
}

export const DEFAULT_LIMITS: Limits = {
  nameBytes: 256,
  groupsPerConnection: 64,
  timers: 1024,
  sessionBytes: 64 * 1024,
  outboundBytes: 1 << 20,
  acceptTimeoutMs: 10_000,
  requestsInFlight: 1024,
  requestBytes: 1 << 20,
  storeRequests: 1024,
};

/**
 * The answer a history or storage request gets: the store answers at once, and the mock holds the answer until the
 * current event returns, when it is delivered as an event of its own.
 */
export type StoreAnswer =
  | { kind: "appended"; result: AppendResult }
  | { kind: "history"; result: HistoryResult }
  | { kind: "read"; result: ReadResult }
  | { kind: "written"; result: WriteResult };

/** A request the store answered whose event is still due. */
export interface PendingAnswer {
  id: string;
  owner: string | undefined;
  answer: StoreAnswer;
}

interface MockTimer {
  due: number;
  period: number | undefined;
  owner: string | undefined;
}

const utf8 = (text: string): number => new TextEncoder().encode(text).length;

/** `text` cut to at most `bytes` bytes of UTF-8, on a character boundary. */
export function cutUtf8(text: string, bytes: number): string {
  let used = 0;
  let end = 0;
  for (const char of text) {
    const size = utf8(char);
    if (used + size > bytes) break;
    used += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/** The close codes a server may put on the wire (RFC 6455 section 7.4); the gateway sends 1008 for any other. */
export function sendable(code: number): number {
  const ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
  return ok ? code : 1008;
}

/** A rejection as the gateway sends it: an HTTP error status (else 500) and at most 1 KiB of body. */
export function gatewayRejection(status: number, body: string): Rejection {
  return { status: Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500, body: cutUtf8(body, 1024) };
}

/**
 * The gateway's answer to an upgrade closed before it was answered, and the reason its on-close gets: shutdown (1001)
 * is a 503, a failure (1011) a 500, anything else (the plugin's `close`, a full queue) a 403.
 */
function refusedByClose(code: number): [Rejection, string] {
  if (code === 1001) return [{ status: 503, body: "server shutting down\n" }, "server shutting down"];
  if (code === 1011) return [{ status: 500, body: "plugin error\n" }, "plugin error"];
  return [{ status: 403, body: "rejected\n" }, "rejected"];
}

/** An HTTP token (RFC 9110 section 5.6.2): what a method and a header name must be. */
function isToken(text: string): boolean {
  return /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(text);
}

export class MockState implements HostCalls {
  limits: Limits = { ...DEFAULT_LIMITS };
  settingsTable = new Map<string, string>();
  /** Whether the plugin defines onTimer / onHttpResponse: without them the gateway refuses a plugin that uses them. */
  timerEvents = false;
  httpEvents = false;
  status = new Map<string, Status>();
  acceptDeadlines = new Map<string, number>();
  /** Messages the plugin sent, per connection, not yet taken by the test. */
  sent = new Map<string, Message[]>();
  /** Ends the plugin caused during the current callback, whose on-close is still due. */
  pendingClose: Array<[string, CloseFrame]> = [];
  logs: Array<[LogLevel, string]> = [];
  requests = new Map<string, Request>();
  groups = new Map<string, Set<string>>();
  users = new Map<string, string>();
  sessions = new Map<string, Map<string, string>>();
  timers = new Map<string, MockTimer>();
  now = 0;
  lastTimer = 0;
  upstreams = new Set<string>();
  outbound = new Map<string, HttpRequest>();
  lastRequest = 0;
  inInit = false;
  /** Whether the plugin defines the history / storage callbacks: without them the gateway refuses one that uses them. */
  historyEvents = false;
  storageEvents = false;
  /** The route's `[route.history]` and `[route.storage]` tables, if it has them. */
  historyConfig: HistoryConfig | undefined;
  storageConfig: StorageConfig | undefined;
  /** The route's history and keys: the store's, so they outlive instances. */
  histories = new Histories();
  keys = new Keys();
  /** History and storage answers whose events are due, oldest first. */
  answers: PendingAnswer[] = [];
  lastStoreRequest = 0;
  /** Why the store fails every request, while a test makes it fail. */
  storeFailure: string | undefined;

  is(connection: string, kind: Status["kind"]): boolean {
    return this.status.get(connection)?.kind === kind;
  }

  /** Whether the plugin may act on the connection: open, or before its upgrade's answer. */
  isLive(connection: string): boolean {
    const kind = this.status.get(connection)?.kind;
    return kind === "open" || kind === "waiting" || kind === "connecting";
  }

  #checkLive(connection: string): void {
    if (!this.isLive(connection)) throw new Refused("unknown-connection");
  }

  #checkName(name: string): void {
    if (utf8(name) > this.limits.nameBytes) throw new Refused("name-too-long");
  }

  /**
   * Ends a live connection as the gateway does: an open one with `frame`; one whose upgrade has no answer yet with
   * `rejection` (by default the one for a close with `frame`'s code), its on-close getting 1006. Its on-close follows
   * when the current callback returns.
   */
  end(connection: string, frame: CloseFrame, rejection?: Rejection): void {
    if (!this.isLive(connection)) return;
    this.acceptDeadlines.delete(connection);
    if (this.is(connection, "open")) {
      this.status.set(connection, { kind: "closed", frame });
      this.pendingClose.push([connection, frame]);
      return;
    }
    const [byClose, why] = refusedByClose(frame.code);
    this.status.set(connection, { kind: "rejected", rejection: rejection ?? byClose });
    this.pendingClose.push([connection, { code: 1006, reason: rejection ? frame.reason : why }]);
  }

  groupMembers(group: string): string[] {
    return [...(this.groups.get(group) ?? [])].sort(byId);
  }

  /** Queues `message` for each of `targets`; returns how many took it. */
  #deliver(message: Message, targets: string[]): number {
    let reached = 0;
    for (const target of targets) {
      try {
        this.send(target, message);
        reached += 1;
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
      }
    }
    return reached;
  }

  /** Everything a connection that ended leaves behind: groups, user, session, owned timers and requests. */
  forget(connection: string): void {
    for (const [group, members] of this.groups) {
      members.delete(connection);
      if (members.size === 0) this.groups.delete(group);
    }
    this.users.delete(connection);
    this.sessions.delete(connection);
    for (const [id, timer] of this.timers) if (timer.owner === connection) this.timers.delete(id);
    for (const [id, request] of this.outbound) if (request.owner?.id === connection) this.outbound.delete(id);
    this.answers = this.answers.filter((a) => a.owner !== connection);
  }

  /** The earliest timer due by `until`, taken off (or rescheduled, when it repeats), with its owner. */
  nextDueTimer(until: number): [string, string | undefined] | undefined {
    let next: [string, MockTimer] | undefined;
    for (const entry of this.timers) {
      if (entry[1].due <= until && (next === undefined || entry[1].due < next[1].due)) next = entry;
    }
    if (next === undefined) return undefined;
    const [id, timer] = next;
    this.now = Math.max(this.now, timer.due);
    if (timer.period === undefined) this.timers.delete(id);
    else timer.due += timer.period;
    return [id, timer.owner];
  }

  send(connection: string, message: Message): void {
    if (!this.isLive(connection)) throw new Refused("closed");
    const queue = this.sent.get(connection) ?? [];
    this.sent.set(connection, queue);
    const queued = queue.reduce((sum, m) => sum + byteLength(m), 0);
    if (queued > 0 && queued + byteLength(message) > this.limits.outboundBytes) {
      // The gateway drops what waits for a client this slow, and closes it.
      queue.length = 0;
      this.end(connection, { code: 1008, reason: "slow consumer" });
      throw new Refused("queue-full");
    }
    queue.push(typeof message === "string" ? message : message.slice());
  }

  close(connection: string, code: number, reason: string): void {
    this.end(connection, { code: sendable(code), reason: cutUtf8(reason, 123) });
  }

  accept(connection: string): void {
    this.#checkLive(connection);
    if (!this.is(connection, "waiting")) throw new Refused("not-deferred");
    this.acceptDeadlines.delete(connection);
    this.status.set(connection, { kind: "open" });
  }

  reject(connection: string, status: number, body: string): void {
    this.#checkLive(connection);
    if (!this.is(connection, "waiting")) throw new Refused("not-deferred");
    this.end(connection, { code: 1006, reason: "rejected" }, gatewayRejection(status, body));
  }

  log(level: LogLevel, message: string): void {
    this.logs.push([level, message]);
  }

  setting(key: string): string | undefined {
    return this.settingsTable.get(key);
  }

  settings(): Array<[string, string]> {
    return [...this.settingsTable].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  joinGroup(connection: string, group: string): void {
    this.#checkLive(connection);
    this.#checkName(group);
    if (this.groups.get(group)?.has(connection)) return;
    const joined = [...this.groups.values()].filter((m) => m.has(connection)).length;
    if (joined >= this.limits.groupsPerConnection) throw new Refused("too-many-groups");
    const members = this.groups.get(group) ?? new Set<string>();
    this.groups.set(group, members);
    members.add(connection);
  }

  leaveGroup(connection: string, group: string): void {
    const members = this.groups.get(group);
    if (members === undefined) return;
    members.delete(connection);
    if (members.size === 0) this.groups.delete(group);
  }

  publish(group: string, message: Message, exclude: string[]): number {
    return this.#deliver(message, this.groupMembers(group).filter((m) => !exclude.includes(m)));
  }

  groupSize(group: string): number {
    return this.groupMembers(group).length;
  }

  groupsOf(connection: string): string[] {
    return [...this.groups].filter(([, m]) => m.has(connection)).map(([g]) => g).sort();
  }

  bindUser(connection: string, uid: string): void {
    this.#checkLive(connection);
    this.#checkName(uid);
    this.users.set(connection, uid);
  }

  unbindUser(connection: string): void {
    this.users.delete(connection);
  }

  sendToUser(uid: string, message: Message): number {
    return this.#deliver(message, this.connectionsOfUser(uid));
  }

  isUserOnline(uid: string): boolean {
    return this.connectionsOfUser(uid).length > 0;
  }

  connectionsOfUser(uid: string): string[] {
    return [...this.users].filter(([, u]) => u === uid).map(([c]) => c).sort(byId);
  }

  broadcast(message: Message, exclude: string[]): number {
    const targets = [...this.status].filter(([c, s]) => s.kind === "open" && !exclude.includes(c)).map(([c]) => c);
    return this.#deliver(message, targets.sort(byId));
  }

  sessionSet(connection: string, key: string, value: string): void {
    this.#checkLive(connection);
    this.#checkName(key);
    const session = this.sessions.get(connection) ?? new Map<string, string>();
    let others = 0;
    for (const [k, v] of session) if (k !== key) others += utf8(k) + utf8(v);
    if (others + utf8(key) + utf8(value) > this.limits.sessionBytes) throw new Refused("too-large");
    this.sessions.set(connection, session);
    session.set(key, value);
  }

  sessionGet(connection: string, key: string): string | undefined {
    return this.sessions.get(connection)?.get(key);
  }

  sessionRemove(connection: string, key: string): void {
    this.sessions.get(connection)?.delete(key);
  }

  connectionInfo(connection: string): ConnectionInfo | undefined {
    const request = this.requests.get(connection);
    if (!this.isLive(connection) || request === undefined) return undefined;
    const { path, query, headers, remoteAddress, subprotocol } = request;
    return { path, query, headers, remoteAddress, subprotocol, connectedAtMs: 0 };
  }

  setTimer(delayMs: number, repeat: boolean, owner: string | undefined): string {
    if (!this.timerEvents) {
      throw new Error(
        "the plugin starts timers but defines no onTimer, so the gateway would refuse to load it " +
          '("imports `wssgate:plugin/timers` but does not export `wssgate:plugin/timer-events`"): define onTimer',
      );
    }
    if (owner !== undefined) this.#checkLive(owner);
    if (this.timers.size >= this.limits.timers) throw new Refused("too-many-timers");
    this.lastTimer += 1;
    const id = String(this.lastTimer);
    this.timers.set(id, { due: this.now + delayMs, period: repeat ? Math.max(delayMs, 1) : undefined, owner });
    return id;
  }

  cancelTimer(timer: string): boolean {
    return this.timers.delete(timer);
  }

  sendRequest(request: HttpRequest): string {
    if (!this.httpEvents) {
      throw new Error(
        "the plugin sends HTTP requests but defines no onHttpResponse, so the gateway would refuse to load it " +
          '("imports `wssgate:plugin/http` but does not export `wssgate:plugin/http-events`"): define onHttpResponse',
      );
    }
    if (this.inInit) throw new Refused("not-now");
    if (!this.upstreams.has(request.upstream)) throw new Refused("not-granted");
    if (request.owner !== undefined && !this.isLive(request.owner.id)) throw new Refused("unknown-connection");
    const headers = request.headers ?? [];
    const headerBytes = headers.reduce((sum, [n, v]) => sum + utf8(n) + utf8(v) + 4, 0);
    if (byteLength(request.body ?? "") + headerBytes > this.limits.requestBytes) throw new Refused("too-large");
    // The gateway takes header values of visible ASCII, spaces and tabs.
    const validHeaders = headers.every(([n, v]) => isToken(n) && /^[\t\x20-\x7e]*$/.test(v));
    if (!isToken(request.method) || !request.path.startsWith("/") || !validHeaders) throw new Refused("invalid-request");
    if (this.outbound.size >= this.limits.requestsInFlight) throw new Refused("too-many-in-flight");
    this.lastRequest += 1;
    const id = String(this.lastRequest);
    this.outbound.set(id, { ...request, headers: [...headers] });
    return id;
  }

  cancelRequest(request: string): boolean {
    return this.outbound.delete(request);
  }

  historyAppend(group: string, message: Message, owner: string | undefined): string {
    const config = this.#history();
    if (byteLength(message) > config.maxMessageBytes) throw new Refused("too-large");
    this.#checkGroup(group);
    this.#checkRequest(owner);
    const result: AppendResult = this.#failure() ?? this.histories.append(config, group, message, this.now);
    return this.#take(owner, { kind: "appended", result });
  }

  historyRead(group: string, since: Position | undefined, limit: number, owner: string | undefined): string {
    const config = this.#history();
    this.#checkGroup(group);
    this.#checkRequest(owner);
    const failure = this.#failure();
    const result: HistoryResult = failure ?? { ok: true, page: this.histories.read(config, group, since, limit, this.now) };
    return this.#take(owner, { kind: "history", result });
  }

  storageGet(key: string, owner: string | undefined): string {
    this.#checkKey(this.#storage(), key);
    this.#checkRequest(owner);
    const result: ReadResult = this.#failure() ?? { ok: true, value: this.keys.get(key, this.now) };
    return this.#take(owner, { kind: "read", result });
  }

  storageSet(key: string, value: Uint8Array, ttlMs: number | undefined, ifRevision: number | undefined, owner: string | undefined): string {
    const config = this.#storage();
    if (value.length > config.maxValueBytes) throw new Refused("too-large");
    return this.#write(config, key, { value, ttlMs }, ifRevision, owner);
  }

  storageRemove(key: string, ifRevision: number | undefined, owner: string | undefined): string {
    return this.#write(this.#storage(), key, undefined, ifRevision, owner);
  }

  #write(config: StorageConfig, key: string, write: Write, ifRevision: number | undefined, owner: string | undefined): string {
    this.#checkKey(config, key);
    this.#checkRequest(owner);
    const result: WriteResult = this.#failure() ?? this.keys.write(config, key, write, ifRevision, this.now);
    return this.#take(owner, { kind: "written", result });
  }

  /** The route's history table; a plugin without the history callbacks would not load at all. */
  #history(): HistoryConfig {
    if (!this.historyEvents) {
      throw new Error(
        "the plugin uses history but defines neither onAppended nor onHistory, so the gateway would refuse to load it " +
          '("imports `wssgate:plugin/history` but does not export `wssgate:plugin/history-events`"): define them',
      );
    }
    if (this.historyConfig === undefined) throw new Refused("not-configured");
    return this.historyConfig;
  }

  /** The route's storage table; a plugin without the storage callbacks would not load at all. */
  #storage(): StorageConfig {
    if (!this.storageEvents) {
      throw new Error(
        "the plugin uses storage but defines neither onRead nor onWritten, so the gateway would refuse to load it " +
          '("imports `wssgate:plugin/storage` but does not export `wssgate:plugin/storage-events`"): define them',
      );
    }
    if (this.storageConfig === undefined) throw new Refused("not-configured");
    return this.storageConfig;
  }

  #checkGroup(group: string): void {
    if (group.length === 0 || utf8(group) > this.limits.nameBytes) throw new Refused("invalid-name");
  }

  #checkKey(config: StorageConfig, key: string): void {
    if (key.length === 0 || utf8(key) > config.maxKeyBytes) throw new Refused("invalid-name");
  }

  /**
   * Refuses a request (once its table, sizes and names passed, as the gateway checks them in that order) from init,
   * for an owner this instance does not serve, or past `max_storage_requests_per_instance` waiting.
   */
  #checkRequest(owner: string | undefined): void {
    if (this.inInit) throw new Refused("not-now");
    if (owner !== undefined && !this.isLive(owner)) throw new Refused("unknown-connection");
    if (this.answers.length >= this.limits.storeRequests) throw new Refused("too-many-pending");
  }

  /** The answer every request gets while the test makes the store fail; it changes nothing. */
  #failure(): { ok: false; error: StorageError } | undefined {
    return this.storeFailure === undefined ? undefined : { ok: false, error: { kind: "unavailable", detail: this.storeFailure } };
  }

  /** Takes a request the store answered with `answer`: its event follows when the current event returns. */
  #take(owner: string | undefined, answer: StoreAnswer): string {
    this.lastStoreRequest += 1;
    const id = String(this.lastStoreRequest);
    this.answers.push({ id, owner, answer });
    return id;
  }
}

/** Orders decimal id strings as the numbers they are. */
export function byId(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
