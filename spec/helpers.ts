/** Test helpers: two agents wired together in one process over real loopback UDP. */
import { once } from 'node:events';
import { Agent, type AgentOptions, type ComponentState } from '../lib/index.js';

/** Resolves with the event's arguments, or rejects after `ms`. Never a sleep: it waits for the event. */
export function waitFor<T extends unknown[]>(
  emitter: NodeJS.EventEmitter,
  event: string,
  pred: (...args: T) => boolean = () => true,
  ms = 5000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for ${event}`));
    }, ms);
    const on = (...args: unknown[]) => {
      if (!pred(...(args as T))) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(args as T);
    };
    emitter.on(event, on);
  });
}

export function waitState(agent: Agent, streamId: number, componentId: number, state: ComponentState, ms = 5000): Promise<unknown> {
  if (agent.getComponentState(streamId, componentId) === state) return Promise.resolve();
  return waitFor(agent, 'component-state-changed', (s: number, c: number, st: ComponentState) =>
    s === streamId && c === componentId && st === state, ms);
}

export const LOOPBACK: AgentOptions = { localAddresses: ['127.0.0.1'], stunInitialTimeout: 100, stunMaxTimeout: 200 };

export interface Pair {
  a: Agent;
  b: Agent;
  streamsA: number[];
  streamsB: number[];
}

/** Makes two agents with `nStreams` streams of `nComponents` each, gathers, and swaps credentials (not candidates). */
export async function makePair(
  optsA: AgentOptions,
  optsB: AgentOptions,
  nStreams = 1,
  nComponents = 1,
): Promise<Pair> {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, ...optsA });
  const b = new Agent({ ...LOOPBACK, controllingMode: false, ...optsB });
  const streamsA: number[] = [];
  const streamsB: number[] = [];
  for (let i = 0; i < nStreams; i++) {
    streamsA.push(a.addStream(nComponents));
    streamsB.push(b.addStream(nComponents));
  }
  await Promise.all([...streamsA.map((s) => a.gatherCandidates(s)), ...streamsB.map((s) => b.gatherCandidates(s))]);
  for (let i = 0; i < nStreams; i++) {
    const ca = a.getLocalCredentials(streamsA[i]!);
    const cb = b.getLocalCredentials(streamsB[i]!);
    a.setRemoteCredentials(streamsA[i]!, cb.ufrag, cb.pwd);
    b.setRemoteCredentials(streamsB[i]!, ca.ufrag, ca.pwd);
  }
  return { a, b, streamsA, streamsB };
}

/** Gives each side the other's candidates for every stream and component. */
export function exchangeCandidates(p: Pair, nComponents = 1, which: 'both' | 'toA' | 'toB' = 'both'): void {
  p.streamsA.forEach((sa, i) => {
    const sb = p.streamsB[i]!;
    for (let c = 1; c <= nComponents; c++) {
      if (which !== 'toA') p.b.setRemoteCandidates(sb, c, p.a.getLocalCandidates(sa, c));
      if (which !== 'toB') p.a.setRemoteCandidates(sa, c, p.b.getLocalCandidates(sb, c));
    }
  });
}

export async function closeAll(...agents: Agent[]): Promise<void> {
  await Promise.all(agents.map((a) => a.close()));
}

export { once };

import { createHook } from 'node:async_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Tracks every timer and UDP handle created from now on, ref'd or not
 * (`process.getActiveResourcesInfo()` does not list unref'd timers, and the
 * agent unrefs its timers). `live()` lists those not yet destroyed.
 */
export function trackHandles(types: readonly string[] = ['Timeout', 'UDPWRAP']): { live(): Promise<string[]>; stop(): void } {
  const alive = new Map<number, string>();
  const wanted = new Set(types);
  const hook = createHook({
    init(id, type) {
      if (wanted.has(type)) alive.set(id, type);
    },
    destroy(id) {
      alive.delete(id);
    },
  }).enable();
  return {
    async live() {
      // destroy hooks run asynchronously; let them drain.
      await nextTurn();
      await nextTurn();
      return [...alive.values()];
    },
    stop() {
      hook.disable();
    },
  };
}

/**
 * Awaits a condition on agent state that no event reports (e.g. a pair's
 * state), checking it after each turn of the event loop, with a timeout.
 */
export async function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Shuffles in place with a seeded PRNG, so a "random order" test is reproducible. */
export function shuffle<T>(arr: T[], seed: number): T[] {
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [arr[i], arr[j]] = [arr[j]!, arr[i]!];
  }
  return arr;
}

/** A loopback UDP port nobody listens on: bound, noted, closed. Checks sent there go unanswered. */
export async function deadPort(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Deterministic PRNG (mulberry32), for reproducible "random" inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

import { nodeNetwork, type Network, type DatagramSocket } from '../lib/index.js';

/**
 * The real network with a filter on outgoing datagrams (false drops it): loss
 * simulated in-process on real sockets, for tests that need both.
 */
export function filteredNetwork(filter: (buf: Uint8Array, to: { address: string; port: number }) => boolean, base: Network = nodeNetwork): Network {
  return {
    now: () => base.now(),
    setTimer: (fn, ms) => base.setTimer(fn, ms),
    clearTimer: (h) => base.clearTimer(h),
    randomBytes: (n) => base.randomBytes(n),
    interfaces: () => base.interfaces(),
    connectStream: (o) => base.connectStream(o),
    listenStream: (a, p) => base.listenStream(a, p),
    lookup: (h, f) => base.lookup(h, f),
    async bindDatagram(address, port): Promise<DatagramSocket> {
      const s = await base.bindDatagram(address, port);
      return {
        local: s.local,
        send: (data, to) => (filter(data, to) ? s.send(data, to) : true),
        onMessage: (h) => s.onMessage(h),
        close: () => s.close(),
      };
    },
  };
}
