/**
 * Builders for the sans-I/O core's plain state (lib/core/state.ts), for the
 * unit tests of the checklist, pair and nomination functions. A `Rig` is a
 * checklist set (the agent's streams, in order) with an id counter and the
 * transports candidates send from, so that a test can form pairs the way
 * lib/core/gathering.ts `formPair` does: §6.1.2.2 `canPair`, `newPair`,
 * `addPair` over the whole set, then `updateStates` (what `pairsAdded` runs).
 */
import type { Candidate, CandidateType, TransportProtocol } from '../../lib/core/candidate.js';
import { type AddResult, DEFAULT_MAX_PAIRS, addPair, canPair, pairByKey, updateStates } from '../../lib/core/checklist.js';
import { newPair, pairKey } from '../../lib/core/pair.js';
import { append, type Credentials, type LocalCand, type Pair, type PairState, type RemoteCand, type StreamData, newComponent } from '../../lib/core/state.js';
import { addressKey } from '../../lib/transport/address.js';
import { LazyMap } from '../../lib/core/lazy.js';

export interface CandOpts {
  priority?: number;
  foundation?: string;
  component?: number;
  type?: CandidateType;
  transport?: TransportProtocol;
  base?: { address: string; port: number };
}

/** A candidate: host, udp, foundation '1', component 1, priority 1000 unless told. */
export function cand(address: string, port: number, o: CandOpts = {}): Candidate {
  const c: Candidate = {
    type: o.type ?? 'host',
    transport: o.transport ?? 'udp',
    foundation: o.foundation ?? '1',
    component: o.component ?? 1,
    priority: o.priority ?? 1000,
    address,
    port,
  };
  if (o.base) c.base = o.base;
  return c;
}

export const REMOTE_CREDS: Credentials = { ufrag: 'rufr', pwd: 'remote-password-remote-pw' };

export interface StreamOpts {
  /** Remote credentials; `null` for a stream still waiting for them (it cannot check). Default: known. */
  remote?: Credentials | null;
  generation?: number;
  restartPending?: boolean;
}

/** A stream's plain data as lib/core/core.ts creates it, with the components given. */
export function newStream(id: number, componentIds: readonly number[] = [1], o: StreamOpts = {}): StreamData {
  return {
    id,
    generation: o.generation ?? 0,
    local: { ufrag: `lu${id}x`, pwd: 'local-password-local-pass' },
    previousLocal: undefined,
    remote: o.remote === null ? undefined : { ...(o.remote ?? REMOTE_CREDS) },
    previousRemote: undefined,
    restartPending: o.restartPending ?? false,
    remoteUsed: false,
    lastCheckAt: 0,
    remoteEndOfCandidates: false,
    lastRemoteCandidateAt: 0,
    gathering: 'new',
    pendingServerJobs: 0,
    initialRequestSeen: false,
    components: new LazyMap(componentIds.map((c) => [c, newComponent(c)] as const)),
    pairs: [],
    triggered: [],
    freeAt: undefined,
  };
}

export type IsDone = (s: StreamData, component: number) => boolean;

/** A checklist set with the bookkeeping the core keeps around it. */
export class Rig {
  readonly set: StreamData[] = [];
  controlling: boolean;
  maxPairs: number;
  isDone: IsDone = () => false;
  #nextId = 1;
  #transports = new Map<string, number>();
  #locals = new Map<number, WeakMap<Candidate, LocalCand>>();
  #remotes = new Map<number, WeakMap<Candidate, RemoteCand>>();

  constructor(o: { controlling?: boolean; maxPairs?: number } = {}) {
    this.controlling = o.controlling ?? true;
    this.maxPairs = o.maxPairs ?? DEFAULT_MAX_PAIRS;
  }

  id(): number {
    return this.#nextId++;
  }

  /** Adds a stream at the end of the set (stream order is set order). */
  stream(componentIds: readonly number[] = [1], o: StreamOpts = {}): StreamData {
    const s = newStream(this.set.length + 1, componentIds, o);
    this.set.push(s);
    return s;
  }

  /** The transport a local candidate sends from: one per base transport address (§5.1.1). */
  transportOf(c: Candidate): number {
    const base = c.base ?? c;
    const key = addressKey(base.address, base.port);
    let id = this.#transports.get(key);
    if (id === undefined) {
      id = 1000 + this.#transports.size;
      this.#transports.set(key, id);
    }
    return id;
  }

  /** The stream's local candidate record for `c` (one per candidate object), in its component. */
  local(s: StreamData, c: Candidate): LocalCand {
    let m = this.#locals.get(s.id);
    if (!m) this.#locals.set(s.id, (m = new WeakMap()));
    let l = m.get(c);
    if (!l) {
      l = { id: this.id(), transportId: this.transportOf(c), c };
      m.set(c, l);
      const comp = this.component(s, c.component);
      comp.local = append(comp.local, l);
    }
    return l;
  }

  /** The stream's remote candidate record for `c` (one per candidate object), in its component. */
  remote(s: StreamData, c: Candidate): RemoteCand {
    let m = this.#remotes.get(s.id);
    if (!m) this.#remotes.set(s.id, (m = new WeakMap()));
    let r = m.get(c);
    if (!r) {
      r = { id: this.id(), c, addedAt: 0 };
      m.set(c, r);
      const compR = this.component(s, c.component);
      compR.remote = append(compR.remote, r);
    }
    return r;
  }

  component(s: StreamData, id: number) {
    let c = s.components.get(id);
    if (!c) s.components.set(id, (c = newComponent(id)));
    return c;
  }

  /** A pair built with `newPair`, not added anywhere. */
  build(s: StreamData, local: Candidate, remote: Candidate): Pair {
    return newPair(this.id(), s.generation, this.local(s, local), this.remote(s, remote), this.controlling);
  }

  /**
   * Forms a pair as lib/core/gathering.ts `formPair` does: undefined when
   * §6.1.2.2 refuses the two candidates, else what `addPair` answered; then
   * `updateStates` over the set (lib/core/selection.ts `pairsAdded`).
   */
  form(s: StreamData, local: Candidate, remote: Candidate): AddResult | undefined {
    if (!canPair(local, remote)) return undefined;
    const pair = this.build(s, local, remote);
    const l = this.local(s, local);
    const r = addPair(this.set, s, pair, this.remote(s, remote), l.c.priority, this.controlling, this.maxPairs);
    this.update();
    return r;
  }

  /** Forms a pair that must be added. */
  add(s: StreamData, local: Candidate, remote: Candidate): Pair {
    const r = this.form(s, local, remote);
    if (!r?.added) {
      throw new Error(`pair ${local.address}:${local.port} -> ${remote.address}:${remote.port} was not formed (${r ? r.reason : 'canPair'})`);
    }
    return r.added;
  }

  /** `updateStates` over the set with the rig's isDone. */
  update(): void {
    updateStates(this.set, this.isDone);
  }

  /** The checklist pair of (local base, remote address), as §6.1.2.4 identifies pairs. */
  get(s: StreamData, local: Candidate, remote: { address: string; port: number }): Pair | undefined {
    return pairByKey(s, pairKey(this.transportOf(local), remote.address, remote.port));
  }

  /** `localPort>remotePort` of a pair, for compact assertions on order. */
  label(s: StreamData, p: Pair): string {
    const c = s.components.get(p.component);
    const l = c?.local.find((x) => x.id === p.localId);
    const r = c?.remote.find((x) => x.id === p.remoteId);
    return `${l?.c.port ?? '?'}>${r?.c.port ?? '?'}`;
  }

  labels(s: StreamData, ps: readonly Pair[]): string[] {
    return ps.map((p) => this.label(s, p));
  }
}

let looseId = 1_000_000;

/** A lone pair (not in any stream), as `newPair` builds it, optionally in a state. */
export function pairOf(local: Candidate, remote: Candidate, controlling = true, state?: PairState): Pair {
  const p = newPair(
    looseId++,
    0,
    { id: looseId++, transportId: 1, c: local },
    { id: looseId++, c: remote, addedAt: 0 },
    controlling,
  );
  if (state) p.state = state;
  return p;
}
