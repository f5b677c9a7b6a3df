/**
 * LazyMap and LazySet (lib/core/lazy.ts) against Map and Set: the same
 * answers after any sequence of operations, across the inline single entry,
 * the table, and back to empty.
 */
import t from 'tap';
import fc from 'fast-check';
import { LazyMap, LazySet } from '../lib/core/lazy.js';

type Op = { op: 'set' | 'delete' | 'clear'; key: number | undefined; value: number };
const ops = fc.array(fc.record({
  op: fc.constantFrom<'set' | 'delete' | 'clear'>('set', 'set', 'set', 'delete', 'delete', 'clear'),
  key: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  value: fc.integer(),
}), { maxLength: 40 });

t.test('LazyMap answers as a Map does', async (t) => {
  let runs = 0;
  fc.assert(fc.property(ops, (seq: Op[]) => {
    const ref = new Map<number | undefined, number>();
    const m = new LazyMap<number | undefined, number>();
    for (const { op, key, value } of seq) {
      if (op === 'set') { ref.set(key, value); m.set(key, value); }
      if (op === 'delete' && ref.delete(key) !== m.delete(key)) return false;
      if (op === 'clear') { ref.clear(); m.clear(); }
      if (m.size !== ref.size) return false;
      for (let k = 0; k <= 4; k++) if (m.get(k) !== ref.get(k) || m.has(k) !== ref.has(k)) return false;
      if (m.has(undefined) !== ref.has(undefined) || m.get(undefined) !== ref.get(undefined)) return false;
      if (JSON.stringify([...m]) !== JSON.stringify([...ref])) return false;
      if (JSON.stringify([...m.keys()]) !== JSON.stringify([...ref.keys()])) return false;
      if (JSON.stringify([...m.values()]) !== JSON.stringify([...ref.values()])) return false;
    }
    runs++;
    return true;
  }), { seed: 20261202, numRuns: 2000 });
  t.equal(runs, 2000, 'every sequence gave the same answers as a Map');
  const init = new LazyMap([[1, 'a'], [2, 'b']] as const);
  t.same([...init.entries()], [[1, 'a'], [2, 'b']], 'built from entries, in order');
});

t.test('LazySet answers as a Set does', async (t) => {
  let runs = 0;
  fc.assert(fc.property(ops, (seq: Op[]) => {
    const ref = new Set<number | undefined>();
    const s = new LazySet<number | undefined>();
    for (const { op, key } of seq) {
      if (op === 'set') { ref.add(key); s.add(key); }
      if (op === 'delete' && ref.delete(key) !== s.delete(key)) return false;
      if (op === 'clear') { ref.clear(); s.clear(); }
      if (s.size !== ref.size) return false;
      for (let k = 0; k <= 4; k++) if (s.has(k) !== ref.has(k)) return false;
      if (s.has(undefined) !== ref.has(undefined)) return false;
      if (JSON.stringify([...s]) !== JSON.stringify([...ref])) return false;
    }
    runs++;
    return true;
  }), { seed: 20261202, numRuns: 2000 });
  t.equal(runs, 2000, 'every sequence gave the same answers as a Set');
});
