/**
 * Waiting on child processes' output without polling or sleeping: every
 * output line (or exit) calls `pulse`, which re-runs the probes of the
 * waiters; `waitFor` resolves with the first value a probe returns, or
 * rejects after `ms` naming what it waited for.
 */
export interface Waiters {
  pulse(): void;
  waitFor<T>(probe: () => T | undefined, ms: number, what: string): Promise<T>;
}

export function createWaiters(): Waiters {
  const waiters = new Set<() => void>();
  return {
    pulse(): void {
      for (const w of [...waiters]) w();
    },
    waitFor<T>(probe: () => T | undefined, ms: number, what: string): Promise<T> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const v = probe();
          if (v === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(v);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
}
