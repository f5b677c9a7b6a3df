/**
 * Gathering, the shell's half (RFC 8445 §5.1.1): binds the host sockets (or
 * opens views of a shared UdpMux), hands them to the core, looks up the
 * STUN/TURN servers' names, and keeps the promise each gatherCandidates()
 * returns until the core says the stream's gathering is done. What a
 * candidate is, its priority and foundation, and when gathering is done are
 * the core's (lib/core/gathering.ts).
 */
import { LazyMap } from '../core/lazy.js';
import { GatheringError } from '../errors.js';
import { bindHost, hostAddresses } from '../gather/host.js';
import { planServers, type TurnServerEntry } from '../gather/servers.js';
import type { Shell } from './shell.js';

interface Running {
  promise: Promise<void>;
  resolve: () => void;
}

export class Gatherer {
  readonly #sh: Shell;
  /** Gatherings under way, by stream; done ones are gone (the stream says it is complete). */
  readonly #running = new LazyMap<number, Running>();

  constructor(shell: Shell) {
    this.#sh = shell;
  }

  /** gatherCandidates(): resolves at the stream's gathering done, or when the stream or the agent goes. */
  gather(streamId: number): Promise<void> {
    const sh = this.#sh;
    const stream = sh.core.stream(streamId);
    const existing = this.#running.get(streamId);
    if (existing) return existing.promise;
    // Done already, or a restored session (Agent.restore) that has its candidates.
    if (stream.gathering === 'complete') return Promise.resolve();
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#running.set(streamId, { promise, resolve });
    this.#run(streamId).catch((err: unknown) => {
      sh.log.write('gather', 'error', `gathering of stream ${streamId} ended: ${(err as Error).message}`);
      resolve();
    });
    return promise;
  }

  /** The stream's gathering is done (the core's event), or the stream is gone. */
  done(streamId: number): void {
    const r = this.#running.get(streamId);
    this.#running.delete(streamId);
    r?.resolve();
  }

  /** No gathering under way. */
  get idle(): boolean {
    return this.#running.size === 0;
  }

  /** close(): every gathering resolves. */
  endAll(): void {
    for (const r of this.#running.values()) r.resolve();
    this.#running.clear();
  }

  async #run(streamId: number): Promise<void> {
    const sh = this.#sh;
    const core = sh.core;
    const net = sh.net;
    core.beginGathering(streamId);
    sh.settle();
    const o = sh.options;
    const components = [...core.stream(streamId).components.keys()];
    // On a mux, component 1 has its addresses already: interfaces are listed (os.networkInterfaces(),
    // about 0.2 ms) only for what binds sockets of its own.
    const ownSockets = o.udpMux === undefined || o.iceTcp || components.length > 1;
    const addrs = ownSockets ? hostAddresses(o, net.interfaces()) : [];
    for (const componentId of components) {
      // Component 1 on the shared port: a check's USERNAME names the stream, not the component.
      const muxed = o.udpMux !== undefined && componentId === 1;
      if (muxed && o.iceUdp) {
        o.udpMux!.addresses.forEach((local, rank) => {
          const view = o.udpMux!.open(local.address);
          const id = core.addHostTransport(streamId, componentId, view.local, rank, net.now());
          sh.attachDatagram(id, streamId, view);
        });
        sh.refreshUfrags(streamId);
        sh.settle();
      }
      for (let rank = 0; rank < addrs.length; rank++) {
        if (o.iceUdp && !muxed) {
          const sock = await sh.track(bindHost(net, addrs[rank]!, o.portRange)).catch((err: NodeJS.ErrnoException) => {
            this.bindFailed(streamId, componentId, addrs[rank]!, err);
            return undefined;
          });
          if (sock && !sh.alive(streamId)) await sock.close();
          if (!sh.alive(streamId)) return;
          if (sock) {
            const id = core.addHostTransport(streamId, componentId, sock.local, rank, net.now());
            sh.attachDatagram(id, streamId, sock);
            sh.settle();
          }
        }
        // ICE-TCP host candidates (RFC 6544 §5.1) of the same address; relayed-only agents have none.
        if (o.iceTcp && !o.forceRelay) {
          await sh.tcp.gather(streamId, componentId, addrs[rank]!, rank, o.portRange);
          if (!sh.alive(streamId)) return;
        }
      }
    }
    if (!sh.alive(streamId)) return;
    const relays: TurnServerEntry[] = o.turnServers.map((t) => [t, undefined]);
    for (const c of core.stream(streamId).components.values()) for (const t of c.relayServers) relays.push([t, c.id]);
    // An ICE-lite agent has host candidates only (RFC 8445 §2.5).
    // With iceUdp off there is no UDP socket to ask STUN servers from, and relayed candidates are UDP.
    const plan = o.iceLite || !o.iceUdp ? { stun: [], turn: [] } : await planServers(o.stunServers, relays, (h) => this.#lookup(h));
    if (!sh.alive(streamId)) return;
    core.startServers(streamId, plan, net.now());
    sh.settle();
  }

  /** No silent failure: an address that cannot be bound is an event (and a warning), not only a debug line. */
  bindFailed(streamId: number, componentId: number, address: string, err: NodeJS.ErrnoException): void {
    const sh = this.#sh;
    if (sh.closed) return;
    const why = err.code === 'EADDRNOTAVAIL' ? 'the address is not on this host' : err.message;
    const e = new GatheringError(streamId, componentId, address, err.code, why);
    sh.log.write('gather', 'warn', e.message);
    sh.agent.emit('gathering-error', streamId, componentId, e);
  }

  /** A name lookup bounded by `serverTimeout`, on the shell's one timer. */
  #lookup(host: string): Promise<string> {
    const sh = this.#sh;
    const ms = sh.options.serverTimeout;
    return new Promise((resolve, reject) => {
      const cancel = sh.after(ms, () => reject(new Error(`no answer within ${ms} ms`)));
      // Not tracked for close(): a name lookup holds no handle of ours, and the deadline bounds the wait.
      sh.net.lookup(host).then((a) => { cancel(); resolve(a); }, (e: Error) => { cancel(); reject(e); });
    });
  }
}
