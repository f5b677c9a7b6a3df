/**
 * Remote candidates the core could not take: `.local` names (mDNS, as
 * browsers obfuscate their host candidates) are resolved here and given to
 * the core with the address they stand for; anything else unusable (TCP with
 * ICE-TCP off, other names, unknown types) is reported. Nothing is dropped
 * silently: every candidate that is not added is a `remote-candidate-skipped`
 * event with the reason.
 */
import type { Candidate } from '../core/candidate.js';
import { LazyMap, LazySet } from '../core/lazy.js';
import { MulticastDnsResolver, isMdnsName, type MdnsResolver } from '../gather/mdns.js';
import { nodeNetwork } from '../transport/node-network.js';
import type { Shell } from './shell.js';

export class RemoteNames {
  readonly #sh: Shell;
  /** The mDNS resolver this agent created (closed with it). */
  #mdns: MulticastDnsResolver | undefined;
  /** Resolutions under way per stream, and the peer's end-of-candidates that wait for them. */
  readonly #pending = new LazyMap<number, number>();
  readonly #deferredEoc = new LazySet<number>();

  constructor(shell: Shell) {
    this.#sh = shell;
  }

  /** What addRemoteCandidates skipped: `.local` names are resolved, the rest reported. */
  skipped(streamId: number, skipped: ReadonlyArray<{ candidate: Candidate; reason: string }>): void {
    for (const s of skipped) {
      const resolver = isMdnsName(s.candidate.address) && s.candidate.transport === 'udp' ? this.#resolver() : undefined;
      if (resolver) this.#resolve(streamId, s.candidate, resolver);
      else this.#skip(streamId, s.candidate, s.reason);
    }
  }

  /**
   * The peer's end-of-candidates: true if it must wait for resolutions under
   * way (it is applied when they end), so that a component is not failed for
   * want of a candidate still being looked up.
   */
  deferEndOfCandidates(streamId: number): boolean {
    if ((this.#pending.get(streamId) ?? 0) === 0) return false;
    this.#deferredEoc.add(streamId);
    return true;
  }

  close(): Promise<void> {
    return this.#mdns?.close() ?? Promise.resolve();
  }

  #skip(streamId: number, candidate: Candidate, reason: string): void {
    const sh = this.#sh;
    sh.log.write('agent', 'warn', `stream ${streamId}: remote candidate skipped: ${reason}`);
    sh.agent.emit('remote-candidate-skipped', streamId, candidate, reason);
  }

  /** The injected resolver, or multicast-dns on the host's network, created on first use. */
  #resolver(): MdnsResolver | undefined {
    const sh = this.#sh;
    const o = sh.options.mdns;
    if (o === false || sh.closed) return undefined;
    if (typeof o === 'object') return o;
    if (o === undefined && sh.net !== nodeNetwork) return undefined;
    this.#mdns ??= new MulticastDnsResolver();
    return this.#mdns;
  }

  #resolve(streamId: number, cand: Candidate, resolver: MdnsResolver): void {
    const sh = this.#sh;
    this.#pending.set(streamId, (this.#pending.get(streamId) ?? 0) + 1);
    resolver.resolve(cand.address, sh.options.serverTimeout).then((ip) => {
      if (!sh.alive(streamId)) return;
      sh.log.write('agent', 'debug', `stream ${streamId}: ${cand.address} is ${ip} (mDNS)`);
      const r = sh.core.addRemoteCandidates(streamId, undefined, [{ ...cand, address: ip }], 'candidate', sh.net.now());
      this.skipped(streamId, r.skipped);
    }, (err: Error) => {
      if (sh.alive(streamId)) this.#skip(streamId, cand, `mDNS name ${cand.address} did not resolve: ${err.message}`);
    }).finally(() => {
      const left = (this.#pending.get(streamId) ?? 1) - 1;
      if (left > 0) this.#pending.set(streamId, left);
      else this.#pending.delete(streamId);
      if (left === 0 && this.#deferredEoc.delete(streamId) && sh.alive(streamId)) sh.core.peerCandidateGatheringDone(streamId, sh.net.now());
      if (!sh.closed) sh.settle();
    });
  }
}
