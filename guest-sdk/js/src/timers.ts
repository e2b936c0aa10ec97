// Timers, like Workerman's Timer::add: one-shot or repeating, delivered to the plugin's `onTimer`. Use them instead
// of setTimeout/setInterval, which never fire inside the gateway (see the README). A plugin that starts timers must
// define `onTimer`: wssgate-build then imports the contract's `timers` and exports `timer-events`.

import { Connection } from "./connection.ts";
import { host } from "./host.ts";

/** A running timer's handle; an equal one (same `id`) reaches `onTimer` when it fires. */
export class Timer {
  /** The gateway-wide timer id, as a decimal string. */
  readonly id: string;
  /** The connection the timer was started for: it dies when that connection closes. */
  readonly owner: Connection | undefined;

  constructor(id: string, owner: Connection | undefined) {
    this.id = id;
    this.owner = owner;
  }

  /** Stops the timer; false when it had already finished, or is not this instance's. */
  cancel(): boolean {
    return host().cancelTimer(this.id);
  }

  equals(other: Timer | undefined): boolean {
    return other !== undefined && other.id === this.id;
  }

  toJSON(): string {
    return this.id;
  }
}

/**
 * Fires once after `delayMs`. With an `owner`, the timer is cancelled when that connection closes. Throws `Refused`
 * "unknown-connection" for an owner that is not a live connection of this instance, and "too-many-timers" past
 * `max_timers_per_instance` (1024 by default).
 */
export function after(delayMs: number, owner?: Connection): Timer {
  return start(delayMs, false, owner);
}

/** Fires every `periodMs` until cancelled (or until its owner closes). Refused like `after`. */
export function every(periodMs: number, owner?: Connection): Timer {
  return start(periodMs, true, owner);
}

function start(delayMs: number, repeat: boolean, owner: Connection | undefined): Timer {
  if (!Number.isFinite(delayMs) || delayMs < 0) {
    throw new RangeError(`a timer's delay must be a finite number of milliseconds, not ${delayMs}`);
  }
  const id = host().setTimer(Math.floor(delayMs), repeat, owner?.id);
  return new Timer(id, owner);
}
