import t from 'tap';
import { prng } from './helpers.js';
import { type Clock, Scheduler, realClock } from '../lib/scheduler.js';

// The scheduler is this library's own design (one timer per agent for every Ta tick, RFC 8489 §6.2.1
// retransmission and RFC 8445 §11 keepalive); these tests drive it with a fake clock, no real time passes.

interface FakeTimer {
  fn: () => void;
  ms: number;
  at: number;
  cleared: boolean;
  fired: boolean;
}

class FakeClock implements Clock {
  time = 0;
  timers: FakeTimer[] = [];
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const h: FakeTimer = { fn, ms, at: this.time + ms, cleared: false, fired: false };
    this.timers.push(h);
    return h;
  }
  clearTimeout(handle: unknown): void {
    (handle as FakeTimer).cleared = true;
  }
  /** Timers set and neither cleared nor fired. */
  get live(): FakeTimer[] {
    return this.timers.filter((h) => !h.cleared && !h.fired);
  }
  /** Moves time forward, firing due timers in order (as the event loop would). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.live.filter((h) => h.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.time = Math.max(this.time, due.at);
      due.fired = true;
      due.fn();
    }
    this.time = end;
  }
}

t.test('runs entries by time, then by insertion order', async (t) => {
  const clock = new FakeClock();
  const s = new Scheduler(clock);
  const ran: string[] = [];
  s.after(30, () => ran.push('a@30'));
  s.after(10, () => ran.push('b@10'));
  s.after(20, () => ran.push('c@20'));
  s.after(10, () => ran.push('d@10'));
  s.at(20, () => ran.push('e@20'));
  s.after(0, () => ran.push('f@0'));
  t.equal(s.size, 6, 'six live entries');
  clock.advance(100);
  t.strictSame(ran, ['f@0', 'b@10', 'd@10', 'c@20', 'e@20', 'a@30'], 'time order, FIFO among equal times');
  t.equal(s.size, 0, 'all consumed');

  // Heap order with many entries and many ties.
  const clock2 = new FakeClock();
  const s2 = new Scheduler(clock2);
  const rnd = prng(42);
  const expected: Array<[number, number]> = [];
  const got: Array<[number, number]> = [];
  for (let i = 0; i < 500; i++) {
    const at = Math.floor(rnd() * 50);
    expected.push([at, i]);
    s2.at(at, () => got.push([clock2.now() >= at ? at : -1, i]));
  }
  expected.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  clock2.advance(100);
  t.strictSame(got, expected, '500 entries in (time, insertion) order, none early');
});

t.test('cancel()', async (t) => {
  const clock = new FakeClock();
  const s = new Scheduler(clock);
  const ran: string[] = [];
  const a = s.after(10, () => ran.push('a'));
  s.after(20, () => ran.push('b'));
  const c = s.after(30, () => ran.push('c'));
  a.cancel();
  t.equal(s.size, 2, 'cancelled entry no longer counted');
  c.cancel();
  c.cancel();
  t.equal(s.size, 1, 'cancel is idempotent');
  t.equal(a.at, 10, 'task keeps its deadline');
  clock.advance(100);
  t.strictSame(ran, ['b'], 'cancelled entries never run');
  const d = s.after(5, () => ran.push('d'));
  clock.advance(5);
  d.cancel();
  t.strictSame(ran, ['b', 'd'], 'cancelling after it ran is harmless');
});

t.test('runDue() runs only due entries', async (t) => {
  const clock = new FakeClock();
  const s = new Scheduler(clock);
  const ran: number[] = [];
  for (const ms of [5, 10, 15, 20, 25]) s.after(ms, () => ran.push(ms));
  clock.time = 15; // time passes without the timer firing (e.g. the loop was busy)
  s.runDue();
  t.strictSame(ran, [5, 10, 15], 'entries at or before now ran, in order');
  t.equal(s.size, 2, 'two left');
  s.runDue();
  t.strictSame(ran, [5, 10, 15], 'running again at the same time runs nothing more');
  clock.time = 19.999;
  s.runDue();
  t.strictSame(ran, [5, 10, 15], 'not before its time');
  clock.time = 20;
  s.runDue();
  t.strictSame(ran, [5, 10, 15, 20]);
});

t.test('one timer, armed for the nearest deadline', async (t) => {
  const clock = new FakeClock();
  const s = new Scheduler(clock);
  t.equal(clock.live.length, 0, 'nothing scheduled: no timer');
  s.after(30, () => {});
  t.equal(clock.live.length, 1, 'one timer');
  t.equal(clock.live[0]!.ms, 30, 'for 30 ms');
  const early = s.after(10, () => {});
  t.equal(clock.live.length, 1, 'still one timer');
  t.equal(clock.live[0]!.ms, 10, 're-armed for the nearer deadline');
  t.equal(clock.timers.filter((h) => h.cleared).length, 1, 'the previous timer was cleared');
  s.after(50, () => {});
  t.equal(clock.timers.length, 2, 'a later entry does not touch the timer');
  s.after(10, () => {});
  t.equal(clock.timers.length, 2, 'an entry at the armed time does not re-arm');
  clock.advance(10);
  t.equal(clock.live.length, 1, 'after the 10 ms entries ran: one timer again');
  t.equal(clock.live[0]!.at, 30, 'armed for the next deadline (t=30)');
  t.equal(clock.live[0]!.ms, 20, 'i.e. 20 ms from now');
  // Cancelling the head: the timer may still fire, then re-arms for the next live entry.
  const mid = s.after(5, () => {});
  t.equal(clock.live[0]!.at, 15);
  mid.cancel();
  clock.advance(5);
  t.equal(clock.live.length, 1, 'one timer');
  t.equal(clock.live[0]!.at, 30, 'cancelled head skipped: armed for t=30');
  clock.advance(100);
  t.equal(clock.live.length, 0, 'all done: no timer left');
  t.equal(s.size, 0);
  t.ok(early.at === 10, 'task deadline is absolute');
  // A deadline already in the past arms a 0 ms timer, never a negative one.
  s.at(clock.now() - 50, () => {});
  t.equal(clock.live[0]!.ms, 0, 'past deadline: 0 ms');
  s.after(-20, () => {});
  t.equal(s.size, 2);
  clock.advance(0);
  t.equal(s.size, 0, 'negative delay treated as 0');
});

t.test('entries scheduled from inside a running entry', async (t) => {
  const clock = new FakeClock();
  const s = new Scheduler(clock);
  const ran: string[] = [];
  s.after(10, () => {
    ran.push('outer');
    s.after(0, () => ran.push('immediate'));
    s.after(5, () => ran.push('later'));
    s.after(-1, () => ran.push('immediate2'));
  });
  s.after(10, () => ran.push('sibling'));
  clock.advance(10);
  t.strictSame(ran, ['outer', 'sibling', 'immediate', 'immediate2'], 'due entries added while running run in the same pass, after earlier ones');
  t.equal(clock.live.length, 1, 'one timer for the rest');
  t.equal(clock.live[0]!.at, 15, 'armed for t=15');
  t.equal(clock.timers.length, 2, 'no timer churn while running: armed once at the end');
  clock.advance(5);
  t.strictSame(ran, ['outer', 'sibling', 'immediate', 'immediate2', 'later']);

  // An entry that throws does not leave the scheduler stuck in "running" mode.
  const s2 = new Scheduler(clock);
  s2.after(1, () => {
    throw new Error('boom');
  });
  t.throws(() => clock.advance(1), /boom/, 'the error propagates');
  let ran2 = false;
  s2.after(1, () => {
    ran2 = true;
  });
  t.ok(clock.live.some((h) => h.at === clock.now() + 1), 'new entry still arms a timer after an entry threw');
  clock.advance(1);
  t.ok(ran2, 'and runs');
});

t.test('an entry that throws does not stall the entries behind it', async (t) => {
  // Entries already queued behind a throwing one must still get a timer: otherwise one exception (caught by
  // an 'uncaughtException' handler) silently stops every retransmission and keepalive of the agent.
  const clock3 = new FakeClock();
  const s3 = new Scheduler(clock3);
  let laterRan = false;
  s3.after(1, () => {
    throw new Error('boom');
  });
  s3.after(5, () => {
    laterRan = true;
  });
  t.throws(() => clock3.advance(1), /boom/);
  t.equal(clock3.live.length, 1, 'a timer is armed for the remaining entry');
  clock3.advance(10);
  t.ok(laterRan, 'the entry queued behind the throwing one runs');
});

t.test('close() clears the timer and refuses new work', async (t) => {
  const clock = new FakeClock();
  const s = new Scheduler(clock);
  let ran = 0;
  s.after(10, () => ran++);
  s.after(20, () => ran++);
  const armed = clock.live[0]!;
  s.close();
  t.ok(armed.cleared, 'the armed timer was cleared');
  t.equal(clock.live.length, 0, 'no live timer');
  t.equal(s.size, 0, 'no entries');
  const task = s.after(1, () => ran++);
  t.equal(clock.live.length, 0, 'scheduling after close arms nothing');
  t.equal(s.size, 0, 'and stores nothing');
  t.doesNotThrow(() => task.cancel(), 'its task can be cancelled');
  clock.time = 1000;
  s.runDue();
  clock.advance(1000);
  t.equal(ran, 0, 'nothing ever runs after close');
  t.doesNotThrow(() => s.close(), 'close twice');

  // close() from inside a running entry stops the pass.
  const s2 = new Scheduler(clock);
  const order: string[] = [];
  s2.after(1, () => {
    order.push('first');
    s2.close();
  });
  s2.after(1, () => order.push('second'));
  clock.advance(1);
  t.strictSame(order, ['first'], 'entries after close() in the same pass do not run');
  t.equal(clock.live.length, 0, 'no timer re-armed after close inside a pass');
});

t.test('real clock: timers are unref\'d (a library must not keep the process alive)', async (t) => {
  const handles: NodeJS.Timeout[] = [];
  const spy: Clock = {
    now: () => realClock.now(),
    setTimeout: (fn, ms) => {
      const h = realClock.setTimeout(fn, ms) as NodeJS.Timeout;
      handles.push(h);
      return h;
    },
    clearTimeout: (h) => realClock.clearTimeout(h),
  };
  const s = new Scheduler(spy);
  s.after(3_600_000, () => t.fail('must not run'));
  t.equal(handles.length, 1, 'a real timer was set');
  t.equal(handles[0]!.hasRef(), false, 'and it is unref\'d');
  s.close();

  // The default clock is the real one, and scheduling with it adds no ref'd Timeout.
  const refd = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = refd();
  const d = new Scheduler();
  t.equal(d.clock, realClock, 'default clock is realClock');
  d.after(3_600_000, () => t.fail('must not run'));
  t.equal(refd(), before, 'no ref\'d Timeout added by the default clock');
  d.close();
  t.ok(Math.abs(realClock.now() - performance.now()) < 1000, 'realClock.now() is monotonic performance time');
});
