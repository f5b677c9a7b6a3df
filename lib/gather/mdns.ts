/**
 * Remote `.local` candidates (draft-ietf-mmusic-mdns-ice-candidates):
 * browsers hide their host addresses behind `<uuid>.local` names that only
 * multicast DNS (RFC 6762) answers, on the same link. To reach a browser on
 * the LAN directly (not by peer-reflexive luck or TURN), the agent resolves
 * them: an A (or AAAA) query to 224.0.0.251:5353, the first answer for the
 * name wins, bounded by a timeout. A name that does not resolve is reported
 * (`remote-candidate-skipped`), never dropped without a word.
 *
 * The default resolver uses `multicast-dns` (a small, widely used pure-JS
 * implementation; writing RFC 6762 packet handling here would be more code to
 * keep than to borrow). It opens its own multicast socket, outside the
 * `Network` seam, created on the first `.local` candidate and closed with the
 * agent; inject another resolver (the `mdns` option) for tests or other links.
 */
import { createRequire } from 'node:module';
import type makeMdns from 'multicast-dns';
import { canonicalIp, isV6 } from '../transport/address.js';

export interface MdnsResolver {
  /** The address `name` (ends with `.local`) stands for; rejects after `timeoutMs` without an answer. */
  resolve(name: string, timeoutMs: number): Promise<string>;
  /** Releases the resolver's sockets; resolves once they are gone. */
  close(): Promise<void>;
}

/** Whether a candidate address is an mDNS name. */
export function isMdnsName(address: string): boolean {
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.local\.?$/i.test(address);
}

/** The `multicast-dns` resolver: queries for A and AAAA records, takes the first answer. */
export class MulticastDnsResolver implements MdnsResolver {
  #mdns: ReturnType<typeof makeMdns> | undefined;
  readonly #waiting = new Map<string, Set<(address: string) => void>>();
  /** Every lookup's timeout, so that close() leaves none behind. */
  readonly #timers = new Map<NodeJS.Timeout, (err: Error) => void>();
  #closing: Promise<void> | undefined;

  #instance(): ReturnType<typeof makeMdns> {
    if (this.#mdns) return this.#mdns;
    // Loaded when a `.local` candidate first comes: most agents never need it.
    const create = createRequire(import.meta.url)('multicast-dns') as typeof makeMdns;
    const mdns = create();
    mdns.on('error', () => {
      // A link without multicast: queries just go unanswered and time out, each reported.
    });
    mdns.on('response', (res) => {
      for (const a of [...res.answers, ...(res.additionals ?? [])]) {
        if (a.type !== 'A' && a.type !== 'AAAA') continue;
        const waiters = this.#waiting.get(a.name.toLowerCase());
        const ip = typeof a.data === 'string' ? canonicalIp(a.data) : undefined;
        if (!waiters || ip === undefined) continue;
        this.#waiting.delete(a.name.toLowerCase());
        for (const w of waiters) w(ip);
      }
    });
    this.#mdns = mdns;
    return mdns;
  }

  resolve(name: string, timeoutMs: number): Promise<string> {
    if (this.#closing) return Promise.reject(new Error('the mDNS resolver is closed'));
    const key = name.replace(/\.$/, '').toLowerCase();
    return new Promise<string>((resolve, reject) => {
      const done = (address: string) => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        resolve(address);
      };
      const fail = (err: Error) => {
        this.#waiting.get(key)?.delete(done);
        this.#timers.delete(timer);
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`no mDNS answer for ${name} within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      this.#timers.set(timer, fail);
      let set = this.#waiting.get(key);
      if (!set) this.#waiting.set(key, (set = new Set()));
      set.add(done);
      this.#instance().query({ questions: [{ name: key, type: 'A' }, { name: key, type: 'AAAA' }] });
    });
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const [timer, fail] of [...this.#timers]) {
        clearTimeout(timer);
        fail(new Error('the mDNS resolver was closed'));
      }
      const m = this.#mdns;
      this.#mdns = undefined;
      if (!m) return resolve();
      m.destroy(() => setImmediate(() => setImmediate(resolve)));
    });
    return this.#closing;
  }
}

/** The family of a resolved address, for logs. */
export function familyOf(address: string): 'IPv4' | 'IPv6' {
  return isV6(address) ? 'IPv6' : 'IPv4';
}
