/**
 * `agent.connect()` and the component sockets' view of a component's state:
 * each waiter settles when every component of its stream is ready, or with a
 * ConnectionError naming the component and the reason when one fails or
 * loses consent, on abort, on timeout, or when the stream or the agent goes.
 */
import type { SelectedPair } from '../core/core.js';
import { LazySet } from '../core/lazy.js';
import type { ComponentState } from '../core/state.js';
import { ConnectionError, InvalidArgumentError, type ConnectionFailure } from '../errors.js';
import type { Shell } from './shell.js';

export interface ConnectOptions {
  /** Aborting rejects the promise (reason `aborted`); the session itself goes on. */
  signal?: AbortSignal;
  /** Reject (reason `timeout`) if not every component is ready within this many ms. */
  timeout?: number;
}

interface Failure {
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

  /** Tells connect() waiters and component sockets about a component's new state. */
  componentChanged(streamId: number, componentId: number, state: ComponentState, consentLost: boolean): void {
    const r = this.#sh.receivers.get(streamId)?.[componentId];
    const failure = state === 'failed'
      ? { componentId, reason: (consentLost ? 'consent-lost' : 'failed') as ConnectionFailure, message: consentLost ? 'consent lost (RFC 7675)' : 'every candidate pair failed' }
      : undefined;
    if (r) for (const sock of r.sockets) sock._state(state === 'ready', failure && new ConnectionError(streamId, componentId, failure.reason, failure.message));
    for (const w of [...this.#waiters]) if (w.streamId === streamId) w.check(failure);
  }

  /** The stream or the agent went away: sockets close, connect() waiters are told. */
  streamGone(streamId: number, reason: ConnectionFailure): void {
    for (const r of this.#sh.receivers.get(streamId) ?? []) for (const sock of r?.sockets ?? []) sock._gone();
    for (const w of [...this.#waiters]) {
      if (w.streamId === streamId) w.check({ componentId: undefined, reason, message: reason === 'closed' ? 'the agent was closed' : 'the stream was removed' });
    }
  }
}
