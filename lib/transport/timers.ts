/**
 * One Node timer for every agent of the process: a binary heap of
 * deadlines, with a single unref'd `setTimeout` armed for the earliest.
 *
 * Each agent keeps exactly one deadline (its shell's one timer), but ten
 * thousand agents with ten thousand Node timers of different durations cost
 * a Timeout object and a timer list each (about 180 bytes), and libuv work at
 * every re-arm. Here a re-arm is a heap operation; the Node timer is touched
 * only when the earliest deadline moves earlier or fires. It is unref'd, as
 * every timer of a library should be, and cleared when no deadline is left,
 * so nothing outlives the agents that asked for it.
 */

/** A deadline; `index` is its place in the heap, -1 once fired or cleared. */
export interface QueuedTimer {
  at: number;
  fn: () => void;
  index: number;
}

export class TimerQueue {
  readonly #now: () => number;
  readonly #heap: QueuedTimer[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** When the Node timer is due (Infinity when none is armed). */
  #armedAt = Infinity;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Deadlines waiting (for tests and stats). */
  get size(): number {
    return this.#heap.length;
  }

  set(fn: () => void, ms: number): QueuedTimer {
    // Rounded up to a whole millisecond: never early, and V8 keeps a whole number unboxed (16 bytes a deadline).
    const t: QueuedTimer = { at: Math.ceil(this.#now() + Math.max(0, ms)), fn, index: this.#heap.length };
    this.#heap.push(t);
    this.#up(t.index);
    if (t.at < this.#armedAt) this.#arm();
    return t;
  }

  /**
   * Moves a pending deadline to `ms` from now: a step through the heap. A lite
   * agent's consent expiry moves later at every request from its peer; moved,
   * it wakes the agent only when it really expires. False once fired or cleared.
   */
  move(t: QueuedTimer, ms: number): boolean {
    if (t.index < 0) return false;
    const at = Math.ceil(this.#now() + Math.max(0, ms));
    const later = at > t.at;
    t.at = at;
    if (later) this.#down(t.index);
    else {
      this.#up(t.index);
      if (at < this.#armedAt) this.#arm();
    }
    // A Node timer armed for the deadline moved later fires, finds nothing due and arms for the new first.
    return true;
  }

  clear(t: QueuedTimer): void {
    if (t.index < 0) return;
    this.#remove(t.index);
    // An armed Node timer for a later-removed deadline fires and finds nothing due: cheaper than
    // re-arming at every clear. With no deadline left it goes now, so that nothing holds a handle.
    if (this.#heap.length === 0) this.#disarm();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const now = this.#now();
    let error: unknown;
    let failed = false;
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const t = this.#heap[0]!;
      this.#remove(0);
      try {
        t.fn();
      } catch (err) {
        // As a throwing setTimeout callback would, but only after the other due deadlines ran.
        if (!failed) error = err;
        failed = true;
      }
    }
    if (this.#heap.length > 0) this.#arm();
    if (failed) throw error;
  }

  #arm(): void {
    const first = this.#heap[0];
    if (!first) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = first.at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, first.at - this.#now()));
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #remove(i: number): void {
    const heap = this.#heap;
    const t = heap[i]!;
    t.index = -1;
    const last = heap.pop()!;
    if (i === heap.length) return;
    heap[i] = last;
    last.index = i;
    this.#up(i);
    this.#down(last.index);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const t = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.at <= t.at) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = t;
    t.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const t = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r]!.at < heap[l]!.at ? r : l;
      const child = heap[c]!;
      if (child.at >= t.at) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = t;
    t.index = i;
  }
}
