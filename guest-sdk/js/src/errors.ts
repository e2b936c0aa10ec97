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

const WHY: Record<Refusal | SendRefusal | RequestRefusal, string> = {
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
  "not-now": "requests cannot be sent now",
};

/**
 * Thrown by every SDK call the gateway can refuse. `refusal` is the contract's name for the reason, so a plugin can
 * branch on it: `if (err instanceof Refused && err.refusal === "too-many-groups") …`. An uncaught one ends the event
 * like any exception: the gateway closes the connection with 1011 and replaces the instance.
 */
export class Refused<R extends Refusal | SendRefusal | RequestRefusal = Refusal | SendRefusal | RequestRefusal> extends Error {
  readonly refusal: R;

  constructor(refusal: R) {
    super(`${refusal}: ${WHY[refusal]}`);
    this.name = "Refused";
    this.refusal = refusal;
  }
}
