/**
 * The simulation's one source of randomness: a small seeded generator
 * (xoshiro128**, seeded through splitmix32), so that a seed reproduces a run
 * bit for bit. Nothing in lib/sim calls Math.random or node:crypto.
 *
 * `fork(label)` derives an independent generator from the *seed* and a label
 * (not from the current state), so that, say, the random bytes a host hands
 * to its agent do not change when some other host sends one datagram more.
 */

/** FNV-1a, 32 bits: turns a seed or a label into 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: spreads one 32-bit seed over the four words of the state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A seed as the simulation accepts it: any number or string (hashed, so 42 and '42' are the same seed). */
export type Seed = number | string;

/** A deterministic pseudo-random generator (xoshiro128**; not cryptographically strong, on purpose). */
export class Prng {
  readonly #seedHash: number;
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: Seed) {
    this.#seedHash = fnv1a(String(seed));
    const st = { s: this.#seedHash };
    this.#a = splitmix32(st);
    this.#b = splitmix32(st);
    this.#c = splitmix32(st);
    this.#d = splitmix32(st);
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#a = 1;
  }

  /** An independent generator for `label`, derived from this generator's seed (its state is not consumed). */
  fork(label: string): Prng {
    return new Prng(`${this.#seedHash}/${label}`);
  }

  /** The next 32 random bits. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** A number in [0, 1). */
  next(): number {
    return this.uint32() / 0x100000000;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** `n` random bytes in a fresh Buffer. */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32BE(this.uint32(), i);
    if (i < n) {
      const last = this.uint32();
      for (let k = 0; i < n; i++, k++) out[i] = (last >>> (24 - 8 * k)) & 0xff;
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
