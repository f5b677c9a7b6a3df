/**
 * A NAT box of the in-memory network, with the behaviours RFC 4787 names:
 *
 * - Mapping (§4.1): which outbound flows share one external port.
 *   'endpoint-independent' (EIM): one port per internal address:port, whatever
 *   the destination; 'address-dependent': one per destination IP;
 *   'address-and-port-dependent': one per destination IP:port (the
 *   "symmetric" NAT).
 * - Filtering (§5): which inbound datagrams to a mapped port get through.
 *   'endpoint-independent': anyone's ("full cone"); 'address-dependent': only
 *   from IPs the internal endpoint has sent to through this mapping
 *   ("restricted cone"); 'address-and-port-dependent': only from IP:ports it
 *   has sent to ("port-restricted cone").
 * - Port allocation (§4.2.1): preserve the internal port when free
 *   (`portPreserving`), else sequential or random (from the seeded generator).
 * - Mapping refresh (§4.3): a mapping idle for `mappingLifetime` (default
 *   120 s, REQ-5's minimum) is gone; outbound traffic refreshes it (REQ-6),
 *   inbound only with `inboundRefresh`. Each filter entry (a remote the
 *   endpoint sent to) ages the same way.
 *
 * Hairpinning (§6) is off by default: a datagram from inside to the NAT's own
 * public address is dropped ('hairpin'); with `hairpinning: true` it goes out
 * and comes back in through the NAT (crossing the NAT's link twice).
 * Only the family of the public address is translated; inside hosts'
 * datagrams of the other family are dropped as unroutable.
 */
import { addressKey, canonicalIp, isV6, type TransportAddress } from '../transport/address.js';
import { InvalidArgumentError } from '../errors.js';
import type { Prng } from './random.js';
import type { Link, DropReason, LinkOptions, Packet, SimProtocol } from './types.js';

/** RFC 4787 behaviours (§4.1 mapping, §5 filtering). */
export type NatBehavior = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/**
 * Classic names (RFC 3489 §5) as shorthands for a mapping/filtering pair:
 * 'full-cone' EIM/EIF, 'restricted-cone' EIM/ADF, 'port-restricted-cone'
 * EIM/APDF, 'symmetric' APDM/APDF.
 */
export type NatType = 'full-cone' | 'restricted-cone' | 'port-restricted-cone' | 'symmetric';

export const NAT_TYPES: Readonly<Record<NatType, { mapping: NatBehavior; filtering: NatBehavior }>> = Object.freeze({
  'full-cone': { mapping: 'endpoint-independent', filtering: 'endpoint-independent' },
  'restricted-cone': { mapping: 'endpoint-independent', filtering: 'address-dependent' },
  'port-restricted-cone': { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
  symmetric: { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
});

const BEHAVIORS: readonly NatBehavior[] = ['endpoint-independent', 'address-dependent', 'address-and-port-dependent'];

export interface SimNatOptions extends Partial<LinkOptions> {
  /** The NAT's external address (in the network outside it; the internet unless `nat` is given). */
  publicAddress: string;
  /** Shorthand for mapping + filtering; explicit `mapping`/`filtering` win over it. */
  type?: NatType;
  /** Default 'endpoint-independent' (RFC 4787 REQ-1). */
  mapping?: NatBehavior;
  /** Default 'address-and-port-dependent' (a port-restricted cone, as Linux conntrack behaves). */
  filtering?: NatBehavior;
  /** Use the internal port as the external port when it is free (RFC 4787 §4.2.1). Default false. */
  portPreserving?: boolean;
  /** How other external ports are chosen: 'random' (default, from the seeded generator) or 'sequential'. */
  portAllocation?: 'random' | 'sequential';
  /** External ports to allocate from, both included. Default [49152, 65535]. */
  portRange?: [number, number];
  /** Idle time after which a UDP mapping is gone, in virtual ms. Default 120 000 (RFC 4787 REQ-5). */
  mappingLifetime?: number;
  /** Idle time for TCP mappings. Default 7 440 000 (124 min, RFC 5382 REQ-5). */
  tcpMappingLifetime?: number;
  /** Whether inbound datagrams refresh a mapping too (RFC 4787 REQ-6 allows it). Default false. */
  inboundRefresh?: boolean;
  /** RFC 4787 §6. Default false. */
  hairpinning?: boolean;
  /** Put this NAT behind another one (carrier-grade NAT): its public address lives inside that NAT. */
  nat?: SimNat;
}

/** One live mapping, as `SimNat.mappings()` lists it. */
export interface NatMapping {
  readonly proto: SimProtocol;
  readonly internal: TransportAddress;
  readonly external: TransportAddress;
  /** For address(-and-port)-dependent mapping: the destination the mapping is for. */
  readonly remote?: TransportAddress | { address: string };
  readonly createdAt: number;
  /** Virtual time of the last refresh. */
  readonly lastUsed: number;
  /** Virtual time at which it is gone unless refreshed. */
  readonly expiresAt: number;
}

export interface SimNatStats {
  /** Mappings created. */
  mappings: number;
  /** Mappings that timed out (counted when the NAT notices: on traffic, allocation or `mappings()`). */
  expired: number;
  /** Datagrams translated on the way out and on the way in. */
  outbound: number;
  inbound: number;
  /** Inbound datagrams refused by filtering. */
  filtered: number;
  /** Inbound datagrams to a port with no live mapping. */
  noMapping: number;
  /** Datagrams to the NAT's own public address from inside, refused (no hairpinning). */
  hairpinDropped: number;
}

interface Mapping {
  proto: SimProtocol;
  key: string;
  internal: TransportAddress;
  externalPort: number;
  remote?: TransportAddress | { address: string };
  createdAt: number;
  lastUsed: number;
  /** Filter state: remote IP (ADF) or IP|port (APDF) -> last outbound time. */
  allowed: Map<string, number>;
}

export class SimNat {
  readonly publicAddress: string;
  readonly mapping: NatBehavior;
  readonly filtering: NatBehavior;
  readonly portPreserving: boolean;
  readonly portAllocation: 'random' | 'sequential';
  readonly portRange: readonly [number, number];
  readonly mappingLifetime: number;
  readonly tcpMappingLifetime: number;
  readonly inboundRefresh: boolean;
  readonly hairpinning: boolean;
  /** The NAT this one sits behind, if any. */
  readonly parent: SimNat | undefined;
  readonly stats: SimNatStats = { mappings: 0, expired: 0, outbound: 0, inbound: 0, filtered: 0, noMapping: 0, hairpinDropped: 0 };
  /** @internal The NAT's link to the network outside it. */
  readonly link: Link;

  readonly #rng: Prng;
  readonly #now: () => number;
  readonly #byKey = new Map<string, Mapping>();
  readonly #byPort = new Map<string, Mapping>();
  #nextPort: number;

  /** @internal Created by SimNetwork.addNat. */
  constructor(opts: SimNatOptions, link: Link, rng: Prng, now: () => number) {
    const pub = canonicalIp(opts.publicAddress);
    if (pub === undefined) throw new InvalidArgumentError('publicAddress', `not an IP address: ${String(opts.publicAddress)}`);
    this.publicAddress = pub;
    const preset = opts.type === undefined ? undefined : NAT_TYPES[opts.type];
    if (opts.type !== undefined && preset === undefined) throw new InvalidArgumentError('type', `unknown NAT type ${String(opts.type)}`);
    this.mapping = opts.mapping ?? preset?.mapping ?? 'endpoint-independent';
    this.filtering = opts.filtering ?? preset?.filtering ?? 'address-and-port-dependent';
    if (!BEHAVIORS.includes(this.mapping)) throw new InvalidArgumentError('mapping', `unknown behaviour ${String(this.mapping)}`);
    if (!BEHAVIORS.includes(this.filtering)) throw new InvalidArgumentError('filtering', `unknown behaviour ${String(this.filtering)}`);
    this.portPreserving = opts.portPreserving ?? false;
    this.portAllocation = opts.portAllocation ?? 'random';
    if (this.portAllocation !== 'random' && this.portAllocation !== 'sequential') throw new InvalidArgumentError('portAllocation', `must be 'random' or 'sequential'`);
    const [lo, hi] = opts.portRange ?? [49152, 65535];
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 1 && hi <= 65535 && lo <= hi)) throw new InvalidArgumentError('portRange', 'must be [min, max] within 1..65535');
    this.portRange = [lo, hi];
    this.mappingLifetime = opts.mappingLifetime ?? 120_000;
    this.tcpMappingLifetime = opts.tcpMappingLifetime ?? 7_440_000;
    for (const [name, v] of [['mappingLifetime', this.mappingLifetime], ['tcpMappingLifetime', this.tcpMappingLifetime]] as const) {
      if (!(v > 0)) throw new InvalidArgumentError(name, 'must be > 0');
    }
    this.inboundRefresh = opts.inboundRefresh ?? false;
    this.hairpinning = opts.hairpinning ?? false;
    this.parent = opts.nat;
    this.link = link;
    this.#rng = rng;
    this.#now = now;
    this.#nextPort = lo;
  }

  /** Changes the NAT's link (delay, jitter, loss, reorder) from now on. */
  setLink(p: Partial<LinkOptions>): void {
    this.link.set(p, `NAT ${this.publicAddress}`);
  }

  /** The live mappings (expired ones are removed first). */
  mappings(): NatMapping[] {
    const now = this.#now();
    const out: NatMapping[] = [];
    for (const m of [...this.#byKey.values()]) {
      if (this.#expired(m, now)) {
        this.#remove(m);
        continue;
      }
      out.push({
        proto: m.proto,
        internal: m.internal,
        external: { address: this.publicAddress, port: m.externalPort },
        ...(m.remote ? { remote: m.remote } : {}),
        createdAt: m.createdAt,
        lastUsed: m.lastUsed,
        expiresAt: m.lastUsed + this.#lifetime(m.proto),
      });
    }
    return out;
  }

  /** Forgets every mapping at once, as a rebooted NAT does. */
  reset(): void {
    this.#byKey.clear();
    this.#byPort.clear();
  }

  /** @internal Translates a packet leaving the NAT's inside; returns the drop reason instead when it cannot pass. */
  outbound(pkt: Packet): Packet | DropReason {
    if (isV6(pkt.dst.address) !== isV6(this.publicAddress)) return 'unroutable';
    if (pkt.dst.address === this.publicAddress && !this.hairpinning) {
      this.stats.hairpinDropped++;
      return 'hairpin';
    }
    const now = this.#now();
    const remotePart = this.mapping === 'endpoint-independent' ? '' : this.mapping === 'address-dependent' ? pkt.dst.address : addressKey(pkt.dst.address, pkt.dst.port);
    const key = `${pkt.proto}|${addressKey(pkt.src.address, pkt.src.port)}|${remotePart}`;
    let m = this.#byKey.get(key);
    if (m !== undefined && this.#expired(m, now)) {
      this.#remove(m);
      m = undefined;
    }
    if (m === undefined) {
      const port = this.#allocate(pkt.proto, pkt.src.port, now);
      if (port === undefined) return 'unroutable';
      m = {
        proto: pkt.proto,
        key,
        internal: { ...pkt.src },
        externalPort: port,
        createdAt: now,
        lastUsed: now,
        allowed: new Map(),
        ...(this.mapping === 'endpoint-independent' ? {} : {
          remote: this.mapping === 'address-dependent' ? { address: pkt.dst.address } : { ...pkt.dst },
        }),
      };
      this.#byKey.set(key, m);
      this.#byPort.set(`${pkt.proto}|${port}`, m);
      this.stats.mappings++;
    }
    m.lastUsed = now;
    if (this.filtering !== 'endpoint-independent') m.allowed.set(this.#filterKey(pkt.dst), now);
    this.stats.outbound++;
    return { ...pkt, src: { address: this.publicAddress, port: m.externalPort } };
  }

  /** @internal Translates a packet arriving at the public address; returns the drop reason instead when it is refused. */
  inbound(pkt: Packet): Packet | DropReason {
    const now = this.#now();
    const m = this.#byPort.get(`${pkt.proto}|${pkt.dst.port}`);
    if (m === undefined || this.#expired(m, now)) {
      if (m !== undefined) this.#remove(m);
      this.stats.noMapping++;
      return 'no-mapping';
    }
    if (this.filtering !== 'endpoint-independent') {
      const t = m.allowed.get(this.#filterKey(pkt.src));
      if (t === undefined || now - t >= this.#lifetime(m.proto)) {
        this.stats.filtered++;
        return 'filtered';
      }
    }
    if (this.inboundRefresh) m.lastUsed = now;
    this.stats.inbound++;
    return { ...pkt, dst: { ...m.internal } };
  }

  #filterKey(remote: TransportAddress): string {
    return this.filtering === 'address-dependent' ? remote.address : addressKey(remote.address, remote.port);
  }

  #lifetime(proto: SimProtocol): number {
    return proto === 'tcp' ? this.tcpMappingLifetime : this.mappingLifetime;
  }

  #expired(m: Mapping, now: number): boolean {
    return now - m.lastUsed >= this.#lifetime(m.proto);
  }

  #remove(m: Mapping): void {
    if (this.#byKey.get(m.key) === m) this.#byKey.delete(m.key);
    const pk = `${m.proto}|${m.externalPort}`;
    if (this.#byPort.get(pk) === m) this.#byPort.delete(pk);
    this.stats.expired++;
  }

  /** Whether an external port is free (reclaiming it if its mapping expired). */
  #free(proto: SimProtocol, port: number, now: number): boolean {
    const m = this.#byPort.get(`${proto}|${port}`);
    if (m === undefined) return true;
    if (!this.#expired(m, now)) return false;
    this.#remove(m);
    return true;
  }

  #allocate(proto: SimProtocol, internalPort: number, now: number): number | undefined {
    if (this.portPreserving && this.#free(proto, internalPort, now)) return internalPort;
    const [lo, hi] = this.portRange;
    const size = hi - lo + 1;
    if (this.portAllocation === 'random') {
      for (let i = 0; i < 64; i++) {
        const p = this.#rng.int(lo, hi);
        if (this.#free(proto, p, now)) return p;
      }
    }
    for (let i = 0; i < size; i++) {
      const p = this.#nextPort;
      this.#nextPort = p >= hi ? lo : p + 1;
      if (this.#free(proto, p, now)) return p;
    }
    return undefined;
  }
}
