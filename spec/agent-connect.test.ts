import t from 'tap';
import { makePair, exchangeCandidates, waitState, closeAll, waitFor } from './helpers.js';

for (const mode of ['regular', 'aggressive'] as const) {
  t.test(`two agents reach ready with ${mode} nomination and move data both ways`, async (t) => {
    const p = await makePair({ nominationMode: mode }, { nominationMode: mode });
    t.teardown(() => closeAll(p.a, p.b));
    const [sa] = p.streamsA;
    const [sb] = p.streamsB;
    const statesB: string[] = [];
    p.b.on('component-state-changed', (_s, _c, st) => statesB.push(st));
    const selA = waitFor(p.a, 'new-selected-pair');
    const selB = waitFor(p.b, 'new-selected-pair');
    exchangeCandidates(p);
    await Promise.all([waitState(p.a, sa!, 1, 'ready'), waitState(p.b, sb!, 1, 'ready')]);
    const [[, , la, ra], [, , lb, rb]] = await Promise.all([selA, selB]) as any;
    t.equal(la.port, rb.port, 'A local = B remote');
    t.equal(lb.port, ra.port, 'B local = A remote');
    t.same(statesB, ['connecting', 'connected', 'ready'], 'controlled side goes through libnice states in order');

    const gotB = new Promise<Buffer>((res) => p.b.attachRecv(sb!, 1, (d) => res(d)));
    const gotA = new Promise<Buffer>((res) => p.a.attachRecv(sa!, 1, (d) => res(d)));
    t.ok(p.a.send(sa!, 1, Buffer.from('\x80hello from A', 'latin1')));
    t.equal((await gotB).toString('latin1'), '\x80hello from A');
    t.ok(p.b.send(sb!, 1, Buffer.from('\x80hello from B', 'latin1')));
    t.equal((await gotA).toString('latin1'), '\x80hello from B');
  });
}
