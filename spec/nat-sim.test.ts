/**
 * The nine NAT combinations {none, EIM, symmetric}² on the in-memory network,
 * STUN and TURN offered: every one connects, through the relay only where no
 * direct path can work; the same under 20% loss; identical from run to run
 * for a given seed.
 */
import t from 'tap';
import { simPair, exchange, runUntilState, closePair, type Side, SERVER, USER, PASS } from './support/sim-pair.js';

const SIDES: Side[] = ['none', 'eim', 'symmetric'];

/** Port-restricted cone meets symmetric: neither side's mapping is reachable by the other's checks. */
function needsRelay(a: Side, b: Side): boolean {
  return (a === 'symmetric' && b !== 'none') || (b === 'symmetric' && a !== 'none');
}

async function connect(sideA: Side, sideB: Side, seed: number, loss: number) {
  const p = await simPair({ sideA, sideB, seed, loss, jitter: 2 });
  const start = p.net.now();
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]], 60_000);
  const ms = p.net.now() - start;
  const pair = p.a.getSelectedPair(1, 1)!;
  const got: number[] = [];
  p.b.attachRecv(1, 1, (d) => got.push(d[1]!));
  // Under loss a datagram may be lost: send until one arrives.
  for (let i = 0; i < 20 && got.length === 0; i++) {
    p.a.send(1, 1, Buffer.from([0x80, i]));
    await p.net.run({ for: 50 });
  }
  await closePair(p);
  return { pair, ms, delivered: got.length > 0, turn: p.turn.stats };
}

for (const loss of [0, 0.2]) {
  t.test(`nine NAT combinations, ${loss * 100}% loss`, async (t) => {
    for (const a of SIDES) {
      for (const b of SIDES) {
        const r = await connect(a, b, 7, loss);
        const relayed = r.pair.local.type === 'relay' || r.pair.remote.type === 'relay';
        t.ok(r.delivered, `${a}/${b}: data delivered`);
        t.equal(relayed, needsRelay(a, b), `${a}/${b}: ${r.pair.local.type} <-> ${r.pair.remote.type} in ${r.ms.toFixed(0)} ms`);
        // Under loss a deallocation may be lost too; the server then lets the allocation expire.
        if (loss === 0) t.equal(r.turn.active, 0, `${a}/${b}: every allocation released`);
      }
    }
  });
}

t.test('the same seed gives the same run; another seed with loss a different one', async (t) => {
  const x = await connect('eim', 'eim', 11, 0.2);
  const y = await connect('eim', 'eim', 11, 0.2);
  const z = await connect('eim', 'eim', 12, 0.2);
  t.equal(x.ms, y.ms, 'same connect time');
  t.same(x.pair, y.pair, 'same selected pair');
  t.ok(z.ms !== x.ms || JSON.stringify(z.pair) !== JSON.stringify(x.pair), 'another seed differs');
});

t.test('a TURN server alone gives the server-reflexive candidate too (XOR-MAPPED-ADDRESS of the Allocate response, §5.1.1.2)', async (t) => {
  const p = await simPair({ sideA: 'eim', sideB: 'eim', seed: 5, servers: false, a: { turnServers: [{ url: `turn:${SERVER}:3478`, username: USER, credential: PASS }] }, b: { turnServers: [{ url: `turn:${SERVER}:3478`, username: USER, credential: PASS }] } });
  for (const [ag, natIp] of [[p.a, '203.0.113.10'], [p.b, '203.0.113.20']] as const) {
    const srflx = ag.getLocalCandidates(1, 1).filter((c) => c.type === 'srflx');
    t.equal(srflx.length, 1, 'one srflx candidate, from the allocation');
    t.equal(srflx[0]?.address, natIp, 'at the NAT\'s public address');
    t.ok(ag.getLocalCandidates(1, 1).some((c) => c.type === 'relay'), 'and the relayed one');
  }
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]], 60_000);
  const pair = p.a.getSelectedPair(1, 1)!;
  t.same([pair.local.type, pair.remote.type], ['srflx', 'srflx'], 'the direct srflx pair is selected, not the relay');
  await closePair(p);
});

// Issue 17: direct before relay under loss. 200 seeded runs of EIM/EIM with 20% loss on each access link
// (a check and its answer cross four lossy links: 41% get through). Before the loss-aware stopping
// criterion (five unanswered transmissions instead of three once loss is seen) and the one more
// transaction for a check lost on a path known to work, 10 of these 200 ended on the relay.
t.test('20% loss, EIM/EIM, 200 seeds: the direct srflx pair wins, and a lost nomination check is sent again', async (t) => {
  let direct = 0;
  let retried = 0;
  const other: string[] = [];
  for (let seed = 1; seed <= 200; seed++) {
    let again = false;
    const logger = { error() {}, warn() {}, info() {}, trace() {}, debug(m: string) { if (m.includes('one more transaction')) again = true; } };
    const p = await simPair({ sideA: 'eim', sideB: 'eim', seed, loss: 0.2, jitter: 2, a: { logger, logLevel: 'debug' } });
    exchange(p);
    await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]], 60_000);
    const pa = p.a.getSelectedPair(1, 1)!;
    const pb = p.b.getSelectedPair(1, 1)!;
    if (pa.local.type === 'srflx' && pa.remote.type === 'srflx' && pb.local.type === 'srflx' && pb.remote.type === 'srflx') direct++;
    else other.push(`seed ${seed}: ${pa.local.type}-${pa.remote.type} / ${pb.local.type}-${pb.remote.type}`);
    if (again) retried++;
    await closePair(p);
  }
  t.ok(direct >= 199, `both agents on the srflx pair in ${direct} of 200 runs`, { other });
  t.ok(retried > 0, `a check lost on a path known to work got one more transaction (${retried} runs)`);
});
