/**
 * One timer per agent (the idea of libjuice's agent bookkeeping): every
 * retransmission, Ta tick, keepalive and consent deadline is an entry in a
 * binary heap, and a single `setTimeout` is armed for the nearest one. A
 * thousand agents then cost a thousand timers, not tens of thousands.
 *
 * The clock and the timer functions are injectable so that tests can drive the
 * scheduler without waiting.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A library must not keep the process alive by its timers alone.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface ScheduledTask {
  readonly at: number;
  cancel(): void;
}

interface Entry extends ScheduledTask {
  at: number;
  seq: number;
  fn: (() => void) | undefined;
}

export class Scheduler {
  readonly clock: Clock;
  #heap: Entry[] = [];
  #seq = 0;
  #timer: unknown = undefined;
  #armedAt = Infinity;
  #closed = false;
  #running = false;

  constructor(clock: Clock = realClock) {
    this.clock = clock;
  }

  now(): number {
    return this.clock.now();
  }

  /** Runs `fn` after `ms` (0 = on the next turn of the scheduler). */
  after(ms: number, fn: () => void): ScheduledTask {
    return this.at(this.clock.now() + Math.max(0, ms), fn);
  }

  at(time: number, fn: () => void): ScheduledTask {
    if (this.#closed) return { at: time, cancel() {} };
    const entry: Entry = {
      at: time,
      seq: this.#seq++,
      fn,
      cancel() {
        // Lazy deletion: the entry stays in the heap and is skipped when due.
        entry.fn = undefined;
      },
    };
    this.#push(entry);
    if (!this.#running) this.#arm();
    return entry;
  }

  /** Number of live entries (for leak tests and stats). */
  get size(): number {
    return this.#heap.filter((e) => e.fn !== undefined).length;
  }

  /** Runs every entry that is due; the real timer calls this, tests may too. */
  runDue(): void {
    this.#running = true;
    try {
      for (;;) {
        const top = this.#heap[0];
        if (!top || this.#closed) break;
        if (top.fn === undefined) {
          this.#pop();
          continue;
        }
        if (top.at > this.clock.now()) break;
        this.#pop();
        const fn = top.fn;
        top.fn = undefined;
        fn();
      }
    } finally {
      // Re-arm even when an entry threw, or every later timer of the agent would stop.
      this.#running = false;
      this.#arm();
    }
  }

  close(): void {
    this.#closed = true;
    this.#heap = [];
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #arm(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.fn === undefined) this.#pop();
    const next = this.#heap[0];
    const at = next ? next.at : Infinity;
    if (at === this.#armedAt) return;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = at;
    if (!next || this.#closed) return;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#armedAt = Infinity;
      this.runDue();
    }, Math.max(0, at - this.clock.now()));
  }

  #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #pop(): Entry | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
