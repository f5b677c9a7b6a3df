/**
 * Consent freshness (RFC 7675) over an hour of virtual time on the in-memory
 * network: 5% loss on each agent's link, RTT jitter, a 15 s outage half-way
 * (longer than the default disconnectedTimeout of 10 s, so that the
 * session must report `disconnected` and then `ready` again). And the
 * RFC 7675 limits to the millisecond: disconnected after 10 s of silence,
 * consent lost after 30 s and nothing sent after that, while a response
 * that comes back at 29 s keeps consent.
 *
 * The consent schedule checked (lib/core/consent.ts): after each request
 * the next goes Math.round(consentInterval × [0.8, 1.2]) ms later, so
 * 4000–6000 ms with the default 5000, unless the silence since the last
 * response reaches disconnectedTimeout or consentTimeout first: then the
 * tick comes exactly at that deadline (and sends a request too). Over an
 * hour that is between 3600/6 = 600 and 3600/4 = 900 requests per side,
 * plus the deadline ticks that came less than 4000 ms after a request
 * (after a silence of more than 6 s: in the outage, or after losses).
 *
 * Memory: the tables the API shows (pairs, candidates, the stats report)
 * and the events on the virtual clock are the same size at 10 and 60
 * minutes, and the heap after a full GC grows by less than 1 MiB. A first
 * session runs an hour before the measured one, so that V8's warm-up (code,
 * feedback) is not counted; what is left varies by a few hundred KiB from
 * run to run, which is what the bound allows.
 */
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import { classOf, decodeStun } from '../lib/stun/message.js';
import type { Agent, ComponentState } from '../lib/index.js';
import type { SimPacketEvent } from '../lib/sim/index.js';
import { closePair, exchange, runUntilState, simPair, type SimPair } from './support/sim-pair.js';

/**
 * A full GC, to compare retained heap: `--expose-gc` can be switched on at run
 * time, and `gc` then read from a fresh context (tap gives no per-file node flags).
 */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MIN = 60_000;
const DISCONNECTED = 10_000;
const CONSENT = 30_000;

function binding(e: SimPacketEvent, cls: 'request' | 'success'): boolean {
  if (e.data.length < 20 || e.data[0]! >= 4) return false;
  const m = decodeStun(e.data);
  return m !== undefined && m.method === 1 && classOf(m.type) === cls;
}

/**
 * One side's consent requests and the responses it accepted, checked as
 * they happen against the schedule above. Keeps no history: memory is
 * measured while it runs.
 */
class ConsentWatch {
  requests = 0;
  /** Ticks that came at a liveness deadline, and those of them less than 4000 ms after the previous request. */
  deadlineTicks = 0;
  shortGaps = 0;
  /** Gaps that follow no rule. */
  readonly violations: string[] = [];
  lastResponse: number;
  #lastRequest: number | undefined;
  #lastResponseAtRequest: number;
  readonly #from: string;
  readonly #to: string;

  constructor(p: SimPair, agent: Agent, peer: Agent, now: number) {
    const l = agent.getSelectedPair(1, 1)!.local;
    const r = peer.getSelectedPair(1, 1)!.local;
    this.#from = `${l.address}|${l.port}`;
    this.#to = `${r.address}|${r.port}`;
    this.lastResponse = now;
    this.#lastResponseAtRequest = now;
    p.net.observe((e) => this.#see(e));
  }

  #see(e: SimPacketEvent): void {
    const from = `${e.from.address}|${e.from.port}`;
    const to = `${e.to.address}|${e.to.port}`;
    if (e.kind === 'send' && from === this.#from && to === this.#to && binding(e, 'request')) {
      this.requests++;
      if (this.#lastRequest !== undefined) {
        const gap = e.time - this.#lastRequest;
        const atDeadline = [DISCONNECTED, CONSENT].some((limit) => e.time === this.#lastResponseAtRequest + limit);
        if (atDeadline) {
          this.deadlineTicks++;
          if (gap < 4000) this.shortGaps++;
        } else if (gap < 4000 || gap > 6000) {
          if (this.violations.length < 10) this.violations.push(`request at ${e.time} ms, ${gap} ms after the previous one`);
        }
      }
      this.#lastRequest = e.time;
      this.#lastResponseAtRequest = this.lastResponse;
    }
    // Every success response delivered here answers a live consent transaction (the RTT is far below its 5 s).
    if (e.kind === 'deliver' && from === this.#to && to === this.#from && binding(e, 'success')) this.lastResponse = e.time;
  }
}

/** State changes with their virtual times (about a hundred in the lossy hour). */
function states(p: SimPair, agent: Agent): Array<{ at: number; state: ComponentState }> {
  const out: Array<{ at: number; state: ComponentState }> = [];
  agent.on('component-state-changed', (_s, _c, state) => out.push({ at: p.net.now(), state }));
  return out;
}

function heapAfterGc(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

t.test('an hour of consent with 5% loss, jitter and a 15 s outage: never fails, disconnected in the outage, ready after', async (t) => {
  const started = performance.now();
  await warmUp();
  // Loss on each agent's link (a round trip crosses four lossy links); 0–10 ms of jitter on every crossing.
  const p = await lossyPair(1);
  const t0 = p.net.now();
  const watch = { a: new ConsentWatch(p, p.a, p.b, t0), b: new ConsentWatch(p, p.b, p.a, t0) };
  const timeline = { a: states(p, p.a), b: states(p, p.b) };
  const sent0 = { a: p.a.getStats().consentChecksSent, b: p.b.getStats().consentChecksSent };
  let lost = 0;
  p.a.on('consent-lost', () => lost++);
  p.b.on('consent-lost', () => lost++);
  let received = 0;
  p.b.attachRecv(1, 1, () => received++);

  const shape = () => ({
    pairs: [p.a.getPairs(1).length, p.b.getPairs(1).length],
    remote: [p.a.getRemoteCandidates(1, 1).length, p.b.getRemoteCandidates(1, 1).length],
    local: [p.a.getLocalCandidates(1, 1).length, p.b.getLocalCandidates(1, 1).length],
  });
  // The stats report as JSON: a per-check record kept anywhere it reports would grow it (counters only gain digits).
  const report = () => JSON.stringify([p.a.getStats(), p.b.getStats()]).length;
  await p.net.run({ for: 10 * MIN });
  const at10 = { heap: heapAfterGc(), pending: p.net.pending, shape: shape(), report: report() };

  // The outage, half-way: B cut off for 15 s, longer than disconnectedTimeout (10 s, the default).
  await p.net.run({ for: 20 * MIN });
  const cut = p.net.now();
  p.hostB.setLink({ loss: 1 });
  await p.net.run({ for: 15_000 });
  const restored = p.net.now();
  const during = { a: p.a.getComponentState(1, 1), b: p.b.getComponentState(1, 1) };
  const silentSince = { a: watch.a.lastResponse, b: watch.b.lastResponse };
  p.hostB.setLink({ loss: 0.05 });
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]], 30_000);
  const back = Math.round(p.net.now() - restored);
  for (let i = 0; i < 20; i++) p.a.send(1, 1, Buffer.from([0x80, i]));

  await p.net.run({ for: t0 + 60 * MIN - p.net.now() });
  const at60 = { heap: heapAfterGc(), pending: p.net.pending, shape: shape(), report: report() };

  t.equal(lost, 0, 'consent never lost');
  for (const side of ['a', 'b'] as const) {
    const agent = side === 'a' ? p.a : p.b;
    const tl = timeline[side];
    t.notOk(tl.some((e) => e.state === 'failed'), `${side}: never failed`);
    t.equal(during[side], 'disconnected', `${side}: disconnected at the end of the outage`);
    const off = tl.find((e) => e.at > cut && e.state === 'disconnected');
    t.equal(off?.at, silentSince[side] + DISCONNECTED, `${side}: disconnected 10 s after its last response, ${off && Math.round(off.at - cut)} ms into the outage`);
    t.ok(tl.some((e) => e.at > restored && e.state === 'ready'), `${side}: ready again ${back} ms after the outage`);
    t.equal(agent.getComponentState(1, 1), 'ready', `${side}: ready at the end of the hour`);
    const w = watch[side];
    const sent = agent.getStats().consentChecksSent - sent0[side];
    t.equal(w.requests, sent, `${side}: the network saw every consent request the stats count`);
    t.ok(sent >= 3600 / 6 && sent <= 3600 / 4 + w.shortGaps, `${side}: ${sent} consent requests in the hour, within [600, 900 + ${w.shortGaps}]`);
    t.same(w.violations, [], `${side}: every gap 4000–6000 ms, or cut short exactly at a liveness deadline`);
    // Loss alone silences a side for 10 s now and then: one lost round trip when the next request falls after the deadline.
    t.comment(`${side}: ${tl.filter((e) => e.state === 'disconnected').length} disconnected episodes in the hour (one is the outage); ` +
      `${w.deadlineTicks} of ${w.requests} requests at a deadline tick, ${w.shortGaps} of them < 4000 ms after the previous one`);
  }
  // Loss is 5% on each of the two links a datagram crosses.
  t.ok(received >= 15, `data flows after the outage: ${received} of 20 datagrams arrived`);

  t.same(at60.shape, at10.shape, 'pairs and candidates: the same at 10 and 60 minutes');
  t.ok(Math.abs(at60.report - at10.report) < 200, `stats report: ${at10.report} characters at 10 min, ${at60.report} at 60 min`);
  t.ok(at60.pending <= at10.pending + 2, `events on the virtual clock: ${at10.pending} at 10 min, ${at60.pending} at 60 min`);
  const growth = at60.heap - at10.heap;
  t.ok(growth < 1024 * 1024, `heap after GC: ${(at10.heap / 1024).toFixed(0)} KiB at 10 min, ${(at60.heap / 1024).toFixed(0)} KiB at 60 min (${(growth / 1024).toFixed(1)} KiB)`);
  await closePair(p);
  t.comment(`two hours of virtual time (the warm-up and the measured hour) in ${Math.round(performance.now() - started)} ms of real time`);
});

async function lossyPair(seed: number): Promise<SimPair> {
  const p = await simPair({ seed, servers: false, loss: 0.05, delay: 5, jitter: 10 });
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  return p;
}

/** An hour of another session first: the code paths of the hour are compiled and warm before the heap is measured. */
async function warmUp(): Promise<void> {
  const w = await lossyPair(99);
  await w.net.run({ for: 60 * MIN });
  await closePair(w);
}

/** A session whose peer (B) only answers: its own consent is off (keepalive indications), so only A's consent is judged. */
async function oneSided(): Promise<{ p: SimPair; lastResponse: () => number }> {
  const p = await simPair({ seed: 2, servers: false, b: { consentFreshness: false } });
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  const watch = new ConsentWatch(p, p.a, p.b, p.net.now());
  // Let a few consent round trips happen, so that "the last response" is a real one.
  await p.net.run({ for: 12_000 });
  return { p, lastResponse: () => watch.lastResponse };
}

t.test('RFC 7675: disconnected after exactly 10 s of silence, consent lost after exactly 30 s, and then nothing is sent', async (t) => {
  const { p, lastResponse } = await oneSided();
  const tl = states(p, p.a);
  let lostAt: number | undefined;
  p.a.on('consent-lost', () => { lostAt = p.net.now(); });
  p.hostB.setLink({ loss: 1 });
  const last = lastResponse();
  await p.net.run({ until: () => lostAt !== undefined, timeout: 40_000 });
  t.equal(tl.find((e) => e.state === 'disconnected')!.at - last, DISCONNECTED, 'disconnected 10 000 ms after the last response');
  t.equal(lostAt! - last, CONSENT, 'consent lost 30 000 ms after the last response');
  t.equal(p.a.getComponentState(1, 1), 'failed', 'the component failed');
  t.equal(p.a.send(1, 1, Buffer.from([0x80])), false, 'send refuses');
  const a = p.a.getLocalCandidates(1, 1)[0]!;
  let sent = 0;
  p.net.observe((e) => {
    if (e.kind === 'send' && e.from.address === a.address && e.from.port === a.port) sent++;
  });
  await p.net.run({ for: 60_000 });
  t.equal(sent, 0, 'not a datagram in the minute after: no consent requests, no data');
  await closePair(p);
});

t.test('RFC 7675: a response that comes back 29 s after the last one keeps consent', async (t) => {
  const { p, lastResponse } = await oneSided();
  const tl = states(p, p.a);
  let lost = false;
  p.a.on('consent-lost', () => { lost = true; });
  p.hostB.setLink({ loss: 1 });
  const last = lastResponse();
  // The first request sent more than 24 s into the silence (there is always one before the 30 s deadline, the
  // requests being at most 6 s apart) gets through, and B's link delays it and its answer so that the answer
  // lands at exactly 29 s: within the 5 s its transaction lives, 1 s before consent would be lost.
  let chosen: number | undefined;
  const a = p.a.getLocalCandidates(1, 1)[0]!;
  const stop = p.net.observe((e) => {
    if (chosen !== undefined || e.kind !== 'send' || e.from.port !== a.port || e.from.address !== a.address || !binding(e, 'request')) return;
    const silent = e.time - last;
    if (silent <= 24_000) return;
    chosen = e.time;
    // A's own link is 5 ms each way; B's link is crossed twice.
    p.hostB.setLink({ loss: 0, delay: Math.max(5, (29_000 - silent - 10) / 2) });
  });
  await p.net.run({ until: () => lastResponse() !== last || lost, timeout: 35_000 });
  stop();
  t.ok(chosen !== undefined, `the request sent ${chosen! - last} ms into the silence went through`);
  t.notOk(lost, 'consent not lost');
  t.equal(lastResponse() - last, 29_000, 'the response came back 29 000 ms after the previous one');
  t.equal(tl.find((e) => e.state === 'disconnected')!.at - last, DISCONNECTED, 'disconnected at 10 s of silence');
  t.equal(p.a.getComponentState(1, 1), 'ready', 'and ready again with the response');
  p.hostB.setLink({ delay: 5 });
  await p.net.run({ for: 60_000 });
  t.notOk(lost, 'consent kept for the minute after');
  t.equal(p.a.getComponentState(1, 1), 'ready', 'still ready');
  await closePair(p);
});
