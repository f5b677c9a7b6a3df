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

/** Marks the table form: the value slot holds the Map. */
const TABLE: unique symbol = Symbol('table');

/** Two fields, not three: the key slot says which form the value slot is in (8 bytes a map, ten maps a session). */
export class LazyMap<K, V> implements Iterable<[K, V]> {
  private k: K | typeof EMPTY | typeof TABLE = EMPTY;
  private v: V | Map<K, V> | undefined = undefined;

  constructor(entries?: Iterable<readonly [K, V]>) {
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  private get table(): Map<K, V> | undefined {
    return this.k === TABLE ? (this.v as Map<K, V>) : undefined;
  }

  get size(): number {
    const m = this.table;
    return m !== undefined ? m.size : this.k === EMPTY ? 0 : 1;
  }

  /** The value when the map holds exactly one entry, inline; else undefined. A loop over one entry without an iterator. */
  get single(): V | undefined {
    return this.k === EMPTY || this.k === TABLE ? undefined : (this.v as V);
  }

  get(key: K): V | undefined {
    const m = this.table;
    if (m !== undefined) return m.get(key);
    return this.k === key ? (this.v as V) : undefined;
  }

  has(key: K): boolean {
    const m = this.table;
    if (m !== undefined) return m.has(key);
    return this.k !== EMPTY && this.k === key;
  }

  set(key: K, value: V): this {
    const m = this.table;
    if (m !== undefined) {
      m.set(key, value);
    } else if (this.k === EMPTY || this.k === key) {
      this.k = key;
      this.v = value;
    } else {
      this.v = new Map([[this.k as K, this.v as V], [key, value]]);
      this.k = TABLE;
    }
    return this;
  }

  delete(key: K): boolean {
    const m = this.table;
    if (m === undefined) {
      if (this.k === EMPTY || this.k !== key) return false;
      this.k = EMPTY;
      this.v = undefined;
      return true;
    }
    if (!m.delete(key)) return false;
    if (m.size === 0) this.clear();
    return true;
  }

  /** Empties the map and gives its table back. */
  clear(): void {
    this.k = EMPTY;
    this.v = undefined;
  }

  keys(): IterableIterator<K> {
    const m = this.table;
    if (m !== undefined) return m.keys();
    return this.k === EMPTY ? (NO_ENTRIES as ReadonlyMap<K, V>).keys() : [this.k as K].values();
  }

  values(): IterableIterator<V> {
    const m = this.table;
    if (m !== undefined) return m.values();
    return this.k === EMPTY ? (NO_ENTRIES as ReadonlyMap<K, V>).values() : [this.v as V].values();
  }

  entries(): IterableIterator<[K, V]> {
    const m = this.table;
    if (m !== undefined) return m.entries();
    return this.k === EMPTY ? (NO_ENTRIES as ReadonlyMap<K, V>).entries() : [[this.k as K, this.v as V] as [K, V]].values();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

const NO_ITEMS: ReadonlySet<unknown> = new Set();

/** The table form of a LazySet: its one field holds this wrapper, told apart from an element by its class. */
class SetTable<T> {
  constructor(readonly s: Set<T>) {}
}

/** One field: empty, the one element, or the table (8 bytes less a set, four sets a session). */
export class LazySet<T> implements Iterable<T> {
  private x: T | typeof EMPTY | SetTable<T> = EMPTY;

  constructor(values?: Iterable<T>) {
    if (values) for (const v of values) this.add(v);
  }

  private get table(): Set<T> | undefined {
    return this.x instanceof SetTable ? (this.x as SetTable<T>).s : undefined;
  }

  get size(): number {
    const s = this.table;
    return s !== undefined ? s.size : this.x === EMPTY ? 0 : 1;
  }

  /** The element when the set holds exactly one, inline; else undefined. */
  get single(): T | undefined {
    return this.x === EMPTY || this.x instanceof SetTable ? undefined : (this.x as T);
  }

  has(value: T): boolean {
    const s = this.table;
    if (s !== undefined) return s.has(value);
    return this.x !== EMPTY && this.x === value;
  }

  add(value: T): this {
    const s = this.table;
    if (s !== undefined) s.add(value);
    else if (this.x === EMPTY || this.x === value) this.x = value;
    else this.x = new SetTable(new Set([this.x as T, value]));
    return this;
  }

  delete(value: T): boolean {
    const s = this.table;
    if (s === undefined) {
      if (this.x === EMPTY || this.x !== value) return false;
      this.x = EMPTY;
      return true;
    }
    if (!s.delete(value)) return false;
    if (s.size === 0) this.x = EMPTY;
    return true;
  }

  /** Empties the set and gives its table back. */
  clear(): void {
    this.x = EMPTY;
  }

  values(): IterableIterator<T> {
    const s = this.table;
    if (s !== undefined) return s.values();
    return this.x === EMPTY ? (NO_ITEMS as ReadonlySet<T>).values() : [this.x as T].values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.values();
  }
}
