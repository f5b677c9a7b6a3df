/**
 * Session continuity (exportSession / Agent.restore) on the in-memory network:
 * a process dies, a new one resumes the session from its snapshot with no
 * gathering, no checks, no Allocate and no ICE restart, and data flows again.
 */
import t from 'tap';
import { Agent, SessionError, type SessionSnapshot } from '../lib/index.js';
import type { SimPacketEvent } from '../lib/sim/index.js';
import { classOf, decodeStun, findAttribute, ATTR } from '../lib/stun/message.js';
import { simPair, exchange, closePair, during, type SimPair } from './support/sim-pair.js';

function stunKind(e: SimPacketEvent): string | undefined {
  const m = e.data.length >= 20 && e.data[0]! < 4 ? decodeStun(e.data) : undefined;
  if (!m) return undefined;
  return `${m.method}:${classOf(m.type)}${findAttribute(e.data, ATTR.USE_CANDIDATE) >= 0 ? ':use' : ''}`;
}

/** Kills B (no deallocation, no goodbye) and restores it from `snap` on the same host. */
async function crashAndRestore(p: SimPair, snap: SessionSnapshot, opts = {}): Promise<Agent> {
  await during(p, p.b.close({ release: false }));
  const json = JSON.parse(JSON.stringify(snap)) as unknown;
  return during(p, Agent.restore(json, { network: p.hostB.network, ...opts }));
}

t.test('a restored session carries data again with no check, no gathering and no ICE restart', async (t) => {
  const p = await simPair({ servers: false });
  exchange(p);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  await p.net.run({ for: 1000 });
  const snap = p.b.exportSession();
  t.equal(snap.version, 1);
  t.match(snap.checksum, /^sha256:[0-9a-f]{64}$/);
  const aStates: string[] = [];
  p.a.on('component-state-changed', (_s, _c, st) => aStates.push(st));
  const events: SimPacketEvent[] = [];
  p.net.observe((e) => { if (e.kind === 'send' && e.from.address === '198.51.100.3') events.push(e); });
  const b2 = await crashAndRestore(p, snap);
  t.equal(b2.getComponentState(1, 1), 'ready', 'ready at once');
  const mine = b2.getSelectedPair(1, 1)!;
  const theirs = p.a.getSelectedPair(1, 1)!;
  t.same([mine.local.port, mine.remote.port], [theirs.remote.port, theirs.local.port], 'the same selected pair as before');
  t.equal(b2.getLocalCandidates(1, 1)[0]!.port, snap.streams[0]!.components[0]!.local[0]!.c.port, 'the same port');
  const got: string[] = [];
  b2.attachRecv(1, 1, (d) => got.push(d.toString()));
  const back: string[] = [];
  p.a.attachRecv(1, 1, (d) => back.push(d.toString()));
  t.ok(b2.send(1, 1, Buffer.from('I am back')), 'the restored side sends at once');
  p.a.send(1, 1, Buffer.from('welcome'));
  await p.net.run({ until: () => got.length === 1 && back.length === 1, timeout: 1000 });
  t.same([got, back], [['welcome'], ['I am back']], 'data both ways');
  await p.net.run({ for: 12_000 });
  const kinds = events.map(stunKind).filter((k) => k !== undefined);
  t.notOk(kinds.some((k) => k.endsWith(':use')), 'no nomination check');
  t.equal(b2.getStats().checksSent, 0, 'no connectivity check at all: consent requests only');
  t.ok(b2.getStats().consentChecksSent > 0, 'consent resumed');
  t.same(aStates, [], 'the peer never left ready');
  t.equal(b2.getLocalCredentials(1).ufrag, snap.streams[0]!.local.ufrag, 'no restart: the same credentials');
  await during(p, b2.close());
  await during(p, p.a.close());
});

t.test('session-changed fires when there is something new to store', async (t) => {
  const p = await simPair({ servers: false });
  let changed = 0;
  p.b.on('session-changed', () => changed++);
  exchange(p);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  t.ok(changed > 0, `fired ${changed} times while connecting`);
  const before = changed;
  await p.net.run({ for: 20_000 });
  t.equal(changed, before, 'not for consent traffic');
  await closePair(p);
});

t.test('a snapshot of another version, corrupted, tampered or keyed without its key: a typed error and nothing bound', async (t) => {
  const p = await simPair({ servers: false });
  exchange(p);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  const plain = JSON.parse(JSON.stringify(p.b.exportSession())) as SessionSnapshot;
  const keyed = JSON.parse(JSON.stringify(p.b.exportSession({ key: 'k3y' }))) as SessionSnapshot;
  await during(p, p.b.close({ release: false }));
  const port = plain.streams[0]!.components[0]!.local[0]!.c.port;
  const tries: Array<[string, unknown, object, string]> = [
    ['another version', { ...plain, version: 2 }, {}, 'version'],
    ['not a snapshot', { hello: 1 }, {}, 'format'],
    ['corrupted', { ...plain, controlling: !plain.controlling }, {}, 'corrupted'],
    ['keyed, no key', keyed, {}, 'tampered'],
    ['keyed, wrong key', keyed, { sessionKey: 'wrong' }, 'tampered'],
    ['keyed and changed', { ...keyed, nextId: keyed.nextId + 1 }, { sessionKey: 'k3y' }, 'tampered'],
  ];
  for (const [what, snap, opts, reason] of tries) {
    const err = await during(p, Agent.restore(snap, { network: p.hostB.network, ...opts }).then(() => undefined, (e: unknown) => e));
    t.type(err, SessionError, what);
    t.equal((err as SessionError).reason, reason, `${what}: reason ${reason}`);
  }
  const busy = await during(p, p.hostB.network.bindDatagram('198.51.100.3', port));
  t.pass('nothing was bound: the port is free');
  const err = await during(p, Agent.restore(plain, { network: p.hostB.network }).then(() => undefined, (e: unknown) => e)) as SessionError;
  t.match(err, { reason: 'bind', port, address: '198.51.100.3' }, 'a port that cannot be had is named');
  await busy.close();
  const good = await during(p, Agent.restore(keyed, { network: p.hostB.network, sessionKey: 'k3y' }));
  t.equal(good.getComponentState(1, 1), 'ready', 'the keyed snapshot restores with its key');
  await during(p, Promise.all([good.close(), p.a.close()]));
});

t.test('through TURN: the restored agent keeps using its allocation (same 5-tuple) and refreshes it', async (t) => {
  const p = await simPair({ sideA: 'symmetric', sideB: 'symmetric' });
  exchange(p);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  const sel = p.b.getSelectedPair(1, 1)!;
  t.ok(sel.local.type === 'relay' || sel.remote.type === 'relay', 'relayed');
  await p.net.run({ for: 4000 }); // unused allocations are freed
  const allocationsBefore = p.turn.stats.allocations;
  const b2 = await crashAndRestore(p, p.b.exportSession());
  const got: string[] = [];
  p.a.attachRecv(1, 1, (d) => got.push(d.toString()));
  b2.send(1, 1, Buffer.from('via the same relay'));
  await p.net.run({ until: () => got.length === 1, timeout: 2000 });
  t.same(got, ['via the same relay']);
  t.equal(p.turn.stats.allocations, allocationsBefore, 'no new Allocate');
  const refreshes = p.turn.stats.refreshes;
  await p.net.run({ for: 700_000 });
  t.ok(p.turn.stats.refreshes > refreshes, 'the restored allocation is refreshed');
  t.equal(b2.getComponentState(1, 1), 'ready', 'and the session lives on past the allocation lifetime');
  await during(p, Promise.all([b2.close(), p.a.close()]));
});
