/**
 * The virtual clock of a simulation: one queue of events (timers of every
 * host and every hop of every datagram), ordered by virtual time and then by
 * the order in which they were scheduled. Nothing here waits for real time;
 * `SimNetwork.run()` pops the events and moves the clock forward.
 */

/** One scheduled event. Opaque to users: it is the `TimerHandle` a simulated `Network.setTimer` returns. */
export class SimEvent {
  /** @internal */
  cancelled = false;
  /** @internal */
  index = -1;

  /** @internal */
  constructor(
    /** Virtual time (ms) at which it fires. */
    readonly time: number,
    /** Tie-breaker: events at one time fire in the order they were scheduled. */
    readonly seq: number,
    /** @internal */
    readonly fn: () => void,
    /**
     * Whether it runs code outside the simulation (a timer callback, a socket
     * handler): the run loop then lets promise continuations run before the
     * next event, as Node drains its microtasks after every callback.
     */
    readonly user: boolean,
  ) {}
}

/** Node's limit for setTimeout (2^31 - 1 ms); out-of-range delays become 1 ms, as in Node. */
const TIMEOUT_MAX = 2 ** 31 - 1;

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** A virtual clock and its event queue (a binary heap on (time, seq)). */
export class VirtualClock {
  #now = 0;
  #seq = 0;
  #live = 0;
  readonly #heap: SimEvent[] = [];

  /** Current virtual time in ms (starts at 0). */
  now(): number {
    return this.#now;
  }

  /** Events scheduled and not cancelled. */
  get pending(): number {
    return this.#live;
  }

  /** Schedules `fn` at virtual time `time` (never in the past). */
  at(time: number, fn: () => void, user: boolean): SimEvent {
    const ev = new SimEvent(Math.max(time, this.#now), this.#seq++, fn, user);
    this.#push(ev);
    this.#live++;
    return ev;
  }

  /**
   * A timer with Node's semantics: `ms` below 1, above 2^31-1 or not a number
   * means 1 ms (so a zero-delay timer loop still lets virtual time advance).
   */
  setTimer(fn: () => void, ms: number): SimEvent {
    const delay = ms >= 1 && ms <= TIMEOUT_MAX ? ms : 1;
    return this.at(this.#now + delay, fn, true);
  }

  /** Cancels an event; anything that is not a pending event of this clock is ignored. */
  cancel(handle: unknown): void {
    if (!(handle instanceof SimEvent) || handle.cancelled || handle.index < 0) return;
    if (this.#heap[handle.index] !== handle) return;
    handle.cancelled = true;
    this.#live--;
  }

  /** Time of the next live event, or undefined when none is left. */
  nextTime(): number | undefined {
    this.#dropCancelled();
    return this.#heap[0]?.time;
  }

  /** Removes and returns the next live event, moving the clock to its time. */
  pop(): SimEvent | undefined {
    this.#dropCancelled();
    const ev = this.#shift();
    if (ev === undefined) return undefined;
    this.#live--;
    if (ev.time > this.#now) this.#now = ev.time;
    return ev;
  }

  /** Moves the clock forward (never back) without firing anything. */
  advanceTo(time: number): void {
    if (time > this.#now) this.#now = time;
  }

  #dropCancelled(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#shift();
  }

  #push(ev: SimEvent): void {
    const h = this.#heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(ev, h[p]!)) break;
      h[i] = h[p]!;
      h[i]!.index = i;
      i = p;
    }
    h[i] = ev;
    ev.index = i;
  }

  #shift(): SimEvent | undefined {
    const h = this.#heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop()!;
    top.index = -1;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        h[i]!.index = i;
        i = c;
      }
      h[i] = last;
      last.index = i;
    }
    return top;
  }
}
