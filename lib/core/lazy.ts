/**
 * A Map and a Set that hold their first entry in the object itself and
 * allocate a hash table only for a second one.
 *
 * V8 gives every `new Map()` and `new Set()` a hash table at once (about
 * 200 bytes with the object). An agent has a dozen tables that stay empty for
 * most sessions — a lite agent sends no checks and asks no server, and most
 * agents resolve no mDNS name and open no TCP connection — and several that
 * hold one entry (one stream, one component, one transport, one foundation);
 * that was over two kilobytes per session, tens of megabytes in a media
 * server. These cost one small object until a second entry arrives, and give
 * the table back when they empty. Only the operations the library uses are
 * here. Iteration is live, as a Map's, while there is a table; over a single
 * entry it is over a snapshot, and once a delete empties the table an entry
 * added in the same loop goes elsewhere and is not visited — where a loop
 * changes its table, the library iterates a copy (`[...m.values()]`).
 */

const NO_ENTRIES: ReadonlyMap<unknown, unknown> = new Map();
/** Marks the inline slot empty (a key may be undefined). */
const EMPTY: unique symbol = Symbol('empty');

export class LazyMap<K, V> implements Iterable<[K, V]> {
  private m: Map<K, V> | undefined = undefined;
  private k: K | typeof EMPTY = EMPTY;
  private v: V | undefined = undefined;

  constructor(entries?: Iterable<readonly [K, V]>) {
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  get size(): number {
    return this.m !== undefined ? this.m.size : this.k === EMPTY ? 0 : 1;
  }

  get(key: K): V | undefined {
    if (this.m !== undefined) return this.m.get(key);
    return this.k === key ? this.v : undefined;
  }

  has(key: K): boolean {
    if (this.m !== undefined) return this.m.has(key);
    return this.k !== EMPTY && this.k === key;
  }

  set(key: K, value: V): this {
    if (this.m !== undefined) {
      this.m.set(key, value);
    } else if (this.k === EMPTY || this.k === key) {
      this.k = key;
      this.v = value;
    } else {
      this.m = new Map([[this.k, this.v as V], [key, value]]);
      this.k = EMPTY;
      this.v = undefined;
    }
    return this;
  }

  delete(key: K): boolean {
    if (this.m === undefined) {
      if (this.k === EMPTY || this.k !== key) return false;
      this.k = EMPTY;
      this.v = undefined;
      return true;
    }
    if (!this.m.delete(key)) return false;
    if (this.m.size === 0) this.m = undefined;
    return true;
  }

  /** Empties the map and gives its table back. */
  clear(): void {
    this.m = undefined;
    this.k = EMPTY;
    this.v = undefined;
  }

  keys(): IterableIterator<K> {
    if (this.m !== undefined) return this.m.keys();
    return this.k === EMPTY ? (NO_ENTRIES as ReadonlyMap<K, V>).keys() : [this.k].values();
  }

  values(): IterableIterator<V> {
    if (this.m !== undefined) return this.m.values();
    return this.k === EMPTY ? (NO_ENTRIES as ReadonlyMap<K, V>).values() : [this.v as V].values();
  }

  entries(): IterableIterator<[K, V]> {
    if (this.m !== undefined) return this.m.entries();
    return this.k === EMPTY ? (NO_ENTRIES as ReadonlyMap<K, V>).entries() : [[this.k, this.v as V] as [K, V]].values();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

const NO_ITEMS: ReadonlySet<unknown> = new Set();

export class LazySet<T> implements Iterable<T> {
  private s: Set<T> | undefined = undefined;
  private one: T | typeof EMPTY = EMPTY;

  constructor(values?: Iterable<T>) {
    if (values) for (const v of values) this.add(v);
  }

  get size(): number {
    return this.s !== undefined ? this.s.size : this.one === EMPTY ? 0 : 1;
  }

  has(value: T): boolean {
    if (this.s !== undefined) return this.s.has(value);
    return this.one !== EMPTY && this.one === value;
  }

  add(value: T): this {
    if (this.s !== undefined) this.s.add(value);
    else if (this.one === EMPTY || this.one === value) this.one = value;
    else {
      this.s = new Set([this.one, value]);
      this.one = EMPTY;
    }
    return this;
  }

  delete(value: T): boolean {
    if (this.s === undefined) {
      if (this.one === EMPTY || this.one !== value) return false;
      this.one = EMPTY;
      return true;
    }
    if (!this.s.delete(value)) return false;
    if (this.s.size === 0) this.s = undefined;
    return true;
  }

  /** Empties the set and gives its table back. */
  clear(): void {
    this.s = undefined;
    this.one = EMPTY;
  }

  values(): IterableIterator<T> {
    if (this.s !== undefined) return this.s.values();
    return this.one === EMPTY ? (NO_ITEMS as ReadonlySet<T>).values() : [this.one].values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.values();
  }
}
