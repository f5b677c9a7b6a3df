/**
 * `agent.connect()`: each waiter settles when every component of its stream
 * is ready, or with a ConnectionError naming the component and the reason
 * when one fails or loses consent, on abort, on timeout, or when the stream
 * or the agent goes (lib/shell/shell.ts tells it).
 */
import type { SelectedPair } from '../core/core.js';
import { LazySet } from '../core/lazy.js';
import { ConnectionError, InvalidArgumentError, type ConnectionFailure } from '../errors.js';
import type { Shell } from './shell.js';

export interface ConnectOptions {
  /** Aborting rejects the promise (reason `aborted`); the session itself goes on. */
  signal?: AbortSignal;
  /** Reject (reason `timeout`) if not every component is ready within this many ms. */
  timeout?: number;
}

export interface Failure {
  componentId: number | undefined;
  reason: ConnectionFailure;
  message: string;
}

interface Waiter {
  streamId: number;
  /** Settles the promise if the stream is ready or `failure` is given. */
  check(failure?: Failure): void;
}

export class Connections {
  readonly #sh: Shell;
  readonly #waiters = new LazySet<Waiter>();

  constructor(shell: Shell) {
    this.#sh = shell;
  }

  connect(streamId: number, opts: ConnectOptions): Promise<SelectedPair[]> {
    const core = this.#sh.core;
    const s = core.stream(streamId);
    if (opts.timeout !== undefined && (typeof opts.timeout !== 'number' || !(opts.timeout > 0))) {
      throw new InvalidArgumentError('timeout', 'must be a positive number of ms');
    }
    const ids = [...s.components.keys()];
    return new Promise<SelectedPair[]>((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const onAbort = () => waiter.check({ componentId: undefined, reason: 'aborted', message: 'connect() aborted' });
      const waiter: Waiter = {
        streamId,
        check: (failure) => {
          if (failure) {
            reject(new ConnectionError(streamId, failure.componentId, failure.reason, failure.message));
          } else {
            const pairs = ids.map((c) => core.selectedPair(streamId, c));
            if (pairs.some((p, i) => p === undefined || core.componentState(streamId, ids[i]!) !== 'ready')) return;
            resolve(pairs as SelectedPair[]);
          }
          this.#waiters.delete(waiter);
          cancelTimer?.();
          opts.signal?.removeEventListener('abort', onAbort);
        },
      };
      this.#waiters.add(waiter);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeout !== undefined) {
        cancelTimer = this.#sh.after(opts.timeout, () => waiter.check({ componentId: undefined, reason: 'timeout', message: `not connected within ${opts.timeout} ms` }));
      }
      waiter.check();
    });
  }

  /** A component changed state (`failure` if it failed), or the stream went: the stream's waiters look again. */
  settle(streamId: number, failure?: Failure): void {
    for (const w of [...this.#waiters]) if (w.streamId === streamId) w.check(failure);
  }
}
