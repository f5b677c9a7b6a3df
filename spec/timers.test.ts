/**
 * lib/transport/timers.ts: the process's one timer queue (a heap of
 * deadlines behind one unref'd Node timer), on a real event loop.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TimerQueue } from '../lib/transport/timers.js';
import { trackHandles } from './helpers.js';

const IMPORT = `import { TimerQueue } from ${JSON.stringify(fileURLToPath(new URL('../lib/transport/timers.ts', import.meta.url)))};`;

/** Runs an ES module snippet in a child Node with this test's loaders; its stdout. */
function child(code: string): string {
  return execFileSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 }).trim();
}

/** Resolves when `q` has no deadline left (each fire is a macrotask: awaiting one is awaiting the event). */
function drained(q: TimerQueue, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const give = setTimeout(() => reject(new Error(`deadlines left: ${q.size}`)), ms);
    const poll = () => (q.size === 0 ? (clearTimeout(give), resolve()) : setImmediate(poll));
    poll();
  });
}

t.test('deadlines fire in time order, whatever order they were set in; cleared ones never', async (t) => {
  const q = new TimerQueue(() => performance.now());
  const fired: number[] = [];
  const delays = [30, 5, 20, 5, 0, 40, 10, 25, 15, 35];
  const handles = delays.map((ms, i) => q.set(() => fired.push(i), ms));
  q.clear(handles[2]!);
  q.clear(handles[7]!);
  q.clear(handles[2]!); // twice: a no-op
  await drained(q);
  const expected = delays.map((ms, i) => [ms, i] as const).filter(([, i]) => i !== 2 && i !== 7)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
  // Equal delays may fire in either order (a heap is not stable): compare by delay.
  t.same(fired.map((i) => delays[i]), expected.map((i) => delays[i]), 'fired in the order of their deadlines');
  t.same([...fired].sort(), [...expected].sort(), 'every deadline not cleared fired once, the cleared ones never');
});

t.test('move: a deadline moved later fires at its new time, one moved earlier fires first; a fired or cleared one does not move', async (t) => {
  const q = new TimerQueue(() => performance.now());
  const start = performance.now();
  const fired: Array<[string, number]> = [];
  const at = (name: string) => () => fired.push([name, performance.now() - start]);
  q.set(at('a'), 40);
  const b = q.set(at('b'), 10);
  const c = q.set(at('c'), 60);
  t.ok(q.move(b, 80), 'b moves later than a and c');
  t.ok(q.move(c, 0), 'c moves earlier than all');
  await drained(q);
  t.same(fired.map(([n]) => n), ['c', 'a', 'b'], 'fired in the order of their new deadlines');
  t.ok(fired[2]![1] >= 80, `b fired at its new deadline, not its first (${fired[2]![1].toFixed(1)} ms)`);
  t.notOk(q.move(b, 10), 'a fired deadline does not move');
  const d = q.set(at('d'), 10);
  q.clear(d);
  t.notOk(q.move(d, 5), 'a cleared one does not either');
  t.equal(q.size, 0, 'nothing left');
});

t.test('a deadline set from a firing callback, earlier than the armed one, fires', async (t) => {
  const q = new TimerQueue(() => performance.now());
  const order: string[] = [];
  q.set(() => order.push('late'), 50);
  q.set(() => {
    order.push('first');
    q.set(() => order.push('nested'), 0);
  }, 1);
  await drained(q);
  t.same(order, ['first', 'nested', 'late']);
});

t.test('a throwing callback: the other due deadlines still run, then the error surfaces as an uncaught exception', async (t) => {
  // In a child process: an uncaught exception is what a throwing setTimeout callback gives too.
  // (The queue's timer is unref'd: an interval keeps the child alive until the error comes.)
  const code = `${IMPORT} const q = new TimerQueue(() => performance.now()); const ran = []; setInterval(() => {}, 1000);
    process.on('uncaughtException', (e) => { console.log(JSON.stringify({ error: e.message, ran: ran.sort() })); process.exit(0); });
    q.set(() => { ran.push('a'); throw new Error('boom'); }, 0); q.set(() => ran.push('b'), 0); q.set(() => {}, 60000);`;
  t.same(JSON.parse(child(code)), { error: 'boom', ran: ['a', 'b'] }, 'both due callbacks ran, then the error surfaced');
});

t.test('no Node timer is left once no deadline is: none after clearing, none after firing', async (t) => {
  const handles = trackHandles(['Timeout']);
  t.teardown(() => handles.stop());
  const q = new TimerQueue(() => performance.now());
  const a = q.set(() => {}, 60_000);
  const b = q.set(() => {}, 30_000);
  q.clear(a);
  q.clear(b);
  q.set(() => {}, 1);
  await drained(q);
  t.same(await handles.live(), [], 'no Timeout alive');
});

t.test('the Node timer is unref\'d: a process with a pending deadline exits', async (t) => {
  // A deadline an hour away: if it held the event loop, the child would not exit (execFileSync would time out).
  t.equal(child(`${IMPORT} new TimerQueue(() => performance.now()).set(() => {}, 3_600_000); console.log('ok');`), 'ok', 'exited on its own');
});
