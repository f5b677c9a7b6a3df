/** The Node-idiomatic surface: component sockets, the connect() promise. On the in-memory network. */
import t from 'tap';
import { ConnectionError, InvalidArgumentError, type ComponentSocket } from '../lib/index.js';
import { simPair, exchange, closePair, during } from './support/sim-pair.js';

t.test('component sockets: any number on one component, beside attachRecv; address(), remoteAddress(), close()', async (t) => {
  const p = await simPair({ servers: false });
  const s1 = p.b.createSocket(1, 1);
  const s2 = p.b.createSocket(1, 1);
  t.throws(() => s1.address(), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }, 'no address before a pair is selected');
  let connects = 0;
  s1.on('connect', () => connects++);
  exchange(p);
  const [pairs] = await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  t.equal(connects, 1, "'connect' when the component has its selected pair");
  const sel = p.b.getSelectedPair(1, 1)!;
  t.same(s1.address(), { address: sel.local.address, family: 'IPv4', port: sel.local.port });
  t.same(s1.remoteAddress(), { address: sel.remote.address, family: 'IPv4', port: sel.remote.port });
  t.same(pairs!.map((x) => x.local.port), [p.a.getSelectedPair(1, 1)!.local.port], 'connect() resolves with the selected pairs');
  const got: string[] = [];
  s1.on('message', (d, rinfo) => got.push(`s1 ${d} ${rinfo.family} ${rinfo.size}`));
  s2.on('message', (d) => got.push(`s2 ${d}`));
  p.b.attachRecv(1, 1, (d) => got.push(`cb ${d}`));
  p.a.send(1, 1, Buffer.from('hi'));
  await p.net.run({ until: () => got.length === 3, timeout: 1000 });
  t.same(got.sort(), ['cb hi', 's1 hi IPv4 2', 's2 hi'], 'every socket and the callback get the datagram');
  // Replies through a socket reach the other side.
  const back: string[] = [];
  p.a.attachRecv(1, 1, (d) => back.push(d.toString()));
  let sendErr: Error | null | undefined;
  t.equal(s2.send(Buffer.from('yo'), (e) => { sendErr = e; }), true);
  await p.net.run({ until: () => back.length === 1, timeout: 1000 });
  t.same(back, ['yo']);
  t.equal(sendErr, null, 'the callback gets null on success');
  const closed = new Promise<void>((r) => s2.once('close', r));
  s2.close();
  await closed;
  t.equal(s2.send(Buffer.from('x')), false, 'a closed socket does not send');
  got.length = 0;
  p.a.send(1, 1, Buffer.from('again'));
  await p.net.run({ until: () => got.length === 2, timeout: 1000 });
  t.same(got.sort(), ['cb again', 's1 again IPv4 5'], 'the others go on');
  const s1closed = new Promise<void>((r) => s1.once('close', r));
  await closePair(p);
  await s1closed;
  t.pass("agent.close() closes the sockets ('close')");
});

t.test('component socket as an async iterator of datagrams; it ends when the socket closes', async (t) => {
  const p = await simPair({ servers: false });
  exchange(p);
  const sock: ComponentSocket = p.b.createSocket(1, 1);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  const seen: number[] = [];
  const reading = (async () => {
    for await (const { data } of sock) {
      seen.push(data[1]!);
      if (seen.length === 3) sock.close();
    }
  })();
  for (let i = 0; i < 3; i++) p.a.send(1, 1, Buffer.from([0x80, i]));
  await p.net.run({ until: () => seen.length === 3, timeout: 1000 });
  await reading;
  t.same(seen, [0, 1, 2], 'in order, and the loop ended');
  await closePair(p);
});

t.test('connect() rejects with a ConnectionError naming the component and the reason', async (t) => {
  // failed: the only candidate is dead.
  {
    const p = await simPair({ servers: false, a: { stunMaxRetransmissions: 1 } });
    const err = p.a.connect(1).catch((e: unknown) => e);
    p.a.setRemoteCandidates(1, 1, ['candidate:1 1 udp 2130706431 198.51.100.99 5000 typ host']);
    await p.net.run({ until: () => p.a.getComponentState(1, 1) === 'failed', timeout: 10_000 });
    const e = (await err) as ConnectionError;
    t.type(e, ConnectionError);
    t.match(e, { reason: 'failed', streamId: 1, componentId: 1, code: 'ERR_ICE_CONNECTION' });
    await closePair(p);
  }
  // aborted, timeout, closed, removed.
  {
    const p = await simPair({ servers: false });
    const ac = new AbortController();
    const aborted = p.a.connect(1, { signal: ac.signal }).catch((e: unknown) => e);
    ac.abort();
    t.match(await aborted, { reason: 'aborted', componentId: undefined });
    const timedOut = p.a.connect(1, { timeout: 500 }).catch((e: unknown) => e);
    await p.net.run({ for: 600 });
    t.match(await timedOut, { reason: 'timeout' });
    t.throws(() => p.a.connect(1, { timeout: -1 }), InvalidArgumentError, 'a bad timeout is a typed error');
    const removed = p.b.connect(1).catch((e: unknown) => e);
    await during(p, p.b.removeStream(1));
    t.match(await removed, { reason: 'removed' });
    const closed = p.a.connect(1).catch((e: unknown) => e);
    await closePair(p);
    t.match(await closed, { reason: 'closed' });
  }
});
