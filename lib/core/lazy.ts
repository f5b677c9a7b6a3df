/**
 * A Map and a Set that allocate their table on the first insertion.
 *
 * V8 gives every `new Map()` and `new Set()` a hash table at once (about
 * 160 bytes with the object). An agent has a dozen tables that stay empty for
 * most sessions — a lite agent sends no checks and asks no server, and most
 * agents resolve no mDNS name and open no TCP connection — which is over a
 * kilobyte per session, megabytes in a media server. These wrappers cost one
 * small object until something goes in, and give the table back when they
 * empty. Only the operations the library uses are here. Iteration is live,
 * as a Map's, with one difference: once a delete empties the table, an entry
 * added in the same loop goes to a new one and is not visited — where a loop
 * changes its table, the library iterates a copy (`[...m.values()]`).
 */

const NO_ENTRIES: ReadonlyMap<unknown, unknown> = new Map();

export class LazyMap<K, V> implements Iterable<[K, V]> {
  private m: Map<K, V> | undefined;

  get size(): number {
    return this.m === undefined ? 0 : this.m.size;
  }

  get(key: K): V | undefined {
    return this.m === undefined ? undefined : this.m.get(key);
  }

  has(key: K): boolean {
    return this.m !== undefined && this.m.has(key);
  }

  set(key: K, value: V): this {
    (this.m ??= new Map()).set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (this.m === undefined || !this.m.delete(key)) return false;
    if (this.m.size === 0) this.m = undefined;
    return true;
  }

  /** Empties the map and gives its table back. */
  clear(): void {
    this.m = undefined;
  }

  keys(): IterableIterator<K> {
    return (this.m ?? (NO_ENTRIES as ReadonlyMap<K, V>)).keys();
  }

  values(): IterableIterator<V> {
    return (this.m ?? (NO_ENTRIES as ReadonlyMap<K, V>)).values();
  }

  entries(): IterableIterator<[K, V]> {
    return (this.m ?? (NO_ENTRIES as ReadonlyMap<K, V>)).entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

const NO_ITEMS: ReadonlySet<unknown> = new Set();

export class LazySet<T> implements Iterable<T> {
  private s: Set<T> | undefined;

  get size(): number {
    return this.s === undefined ? 0 : this.s.size;
  }

  has(value: T): boolean {
    return this.s !== undefined && this.s.has(value);
  }

  add(value: T): this {
    (this.s ??= new Set()).add(value);
    return this;
  }

  delete(value: T): boolean {
    if (this.s === undefined || !this.s.delete(value)) return false;
    if (this.s.size === 0) this.s = undefined;
    return true;
  }

  /** Empties the set and gives its table back. */
  clear(): void {
    this.s = undefined;
  }

  values(): IterableIterator<T> {
    return (this.s ?? (NO_ITEMS as ReadonlySet<T>)).values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.values();
  }
}
