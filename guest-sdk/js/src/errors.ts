// The one error the SDK throws when the gateway refuses a call: `err.refusal` names why, in the contract's words.

/** Why the gateway refused a call on a connection, a name, a session value, a timer or a log line (the WIT's `refusal`). */
export type Refusal =
  | "unknown-connection"
  | "name-too-long"
  | "too-many-groups"
  | "too-many-timers"
  | "too-large"
  | "rate-limited"
  | "not-deferred";

/** Why the gateway refused a send (the WIT's `send-error`). */
export type SendRefusal = "closed" | "queue-full";

/** Why the gateway did not send an HTTP request (the WIT's `request-refusal`); no response event follows. */
export type RequestRefusal =
  | "not-granted"
  | "too-many-in-flight"
  | "too-large"
  | "invalid-request"
  | "unknown-connection"
  | "not-now";

/**
 * Why the gateway did not take a history or storage request (the WIT's `storage-refusal`); no event follows. When
 * several apply, the first of "not-configured", "too-large", "invalid-name", "not-now", "unknown-connection",
 * "too-many-pending" is given.
 */
export type StorageRefusal =
  | "not-configured"
  | "invalid-name"
  | "too-large"
  | "too-many-pending"
  | "unknown-connection"
  | "not-now";

/** Every reason a `Refused` can carry. */
export type AnyRefusal = Refusal | SendRefusal | RequestRefusal | StorageRefusal;

const WHY: Record<AnyRefusal, string> = {
  "unknown-connection": "connection is closed or unknown",
  "name-too-long": "name is too long",
  "too-many-groups": "connection is in too many groups",
  "too-many-timers": "too many timers are running",
  "too-large": "too large",
  "rate-limited": "too many log lines per second",
  "not-deferred": "connection is not waiting for an accept or reject",
  closed: "connection is closed",
  "queue-full": "connection's outbound queue is full (slow consumer)",
  "not-granted": "the route is not granted this upstream",
  "too-many-in-flight": "too many requests in flight",
  "invalid-request": "not a valid HTTP request",
  "not-now": "requests cannot be made now (not from init)",
  "not-configured": "the route keeps no history or storage of this kind",
  "invalid-name": "the group name or key is empty or too long",
  "too-many-pending": "too many history and storage requests are waiting",
};

/**
 * Thrown by every SDK call the gateway can refuse. `refusal` is the contract's name for the reason, so a plugin can
 * branch on it: `if (err instanceof Refused && err.refusal === "too-many-groups") …`. An uncaught one ends the event
 * like any exception: the gateway closes the connection with 1011 and replaces the instance.
 */
export class Refused<R extends AnyRefusal = AnyRefusal> extends Error {
  readonly refusal: R;

  constructor(refusal: R) {
    super(`${refusal}: ${WHY[refusal]}`);
    this.name = "Refused";
    this.refusal = refusal;
  }
}
