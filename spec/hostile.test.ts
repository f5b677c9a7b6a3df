/**
 * Hostile and malformed traffic from the network is dropped or answered as
 * RFC 8489/8445 say, counted in the stats, and changes no state.
 */
import t from 'tap';
import dgram from 'node:dgram';
import stun from 'stun';
import { Agent } from '../lib/index.js';
import { newTransactionId, decodeStun, getErrorCode, BINDING_SUCCESS } from '../lib/stun/message.js';
import { encodeBindingRequest } from '../lib/stun/binding.js';
import { LOOPBACK, waitFor, makePair, exchangeCandidates, waitState, closeAll } from './helpers.js';

function rawSocket(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

/** Sends `buf` and resolves with the next datagram the socket receives. */
function request(sock: dgram.Socket, buf: Buffer, port: number): Promise<Buffer> {
  const reply = waitFor<[Buffer]>(sock, 'message', () => true, 3000).then(([m]) => m);
  sock.send(buf, port, '127.0.0.1');
  return reply;
}

t.test('garbage, forged and unauthenticated packets are dropped or refused, counted, and change nothing', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true });
  const sock = await rawSocket();
  t.teardown(async () => {
    sock.close();
    await a.close();
  });
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  const { ufrag, pwd } = a.getLocalCredentials(s);
  const port = a.getLocalCandidates(s, 1)[0]!.port;
  let events = 0;
  for (const e of ['new-remote-candidate', 'initial-binding-request-received', 'component-state-changed', 'new-selected-pair']) {
    a.on(e as any, () => events++);
  }
  const stateBefore = a.getComponentState(s, 1);

  // 1. Bytes that claim to be STUN (first byte 0-3) but are not framed as STUN.
  for (let i = 0; i < 50; i++) {
    const junk = Buffer.alloc(20 + (i % 40));
    for (let j = 0; j < junk.length; j++) junk[j] = (i * 31 + j * 17) & 0xff;
    junk[0] = i & 3;
    sock.send(junk, port, '127.0.0.1');
  }
  // 2. A well-framed header whose attribute overruns the message.
  const overrun = Buffer.alloc(24);
  overrun.writeUInt16BE(0x0001, 0);
  overrun.writeUInt16BE(4, 2);
  overrun.writeUInt32BE(0x2112a442, 4);
  overrun.writeUInt16BE(0x0006, 20);
  overrun.writeUInt16BE(200, 22);
  sock.send(overrun, port, '127.0.0.1');
  // 3. Application data from an address that never passed a check.
  sock.send(Buffer.from([0x80, 1, 2, 3]), port, '127.0.0.1');
  // 4. A response to a transaction we never started.
  const forged = stun.createMessage(BINDING_SUCCESS, newTransactionId());
  forged.addXorAddress('127.0.0.1', 1);
  forged.addFingerprint();
  sock.send(forged.toBuffer(), port, '127.0.0.1');
  // 5. A check with a broken FINGERPRINT: not STUN, dropped silently.
  const fp = encodeBindingRequest({
    transactionId: newTransactionId(), username: `${ufrag}:evil`, password: pwd, priority: 1,
    controlling: false, tieBreaker: 1n, useCandidate: false,
  });
  fp[fp.length - 1] ^= 0xff;
  sock.send(fp, port, '127.0.0.1');

  // 6. Unknown USERNAME: 401 (RFC 8489 §9.1.3). Loopback keeps order, so this
  // answer also proves everything above was processed.
  const unknownUser = encodeBindingRequest({
    transactionId: newTransactionId(), username: 'nobody:evil', password: pwd, priority: 1,
    controlling: false, tieBreaker: 1n, useCandidate: false,
  });
  let r = decodeStun(await request(sock, unknownUser, port))!;
  t.equal(r.cls, 'error');
  t.equal(getErrorCode(r)!.code, 401, 'unknown username → 401');

  // 7. Right USERNAME, wrong password: 401.
  const badMi = encodeBindingRequest({
    transactionId: newTransactionId(), username: `${ufrag}:evil`, password: 'wrongwrongwrongwrongwrong', priority: 1,
    controlling: false, tieBreaker: 1n, useCandidate: true,
  });
  r = decodeStun(await request(sock, badMi, port))!;
  t.equal(getErrorCode(r)!.code, 401, 'bad MESSAGE-INTEGRITY → 401');

  // 8. No MESSAGE-INTEGRITY at all: 400.
  const noMi = stun.createMessage(0x0001, newTransactionId());
  noMi.addUsername(`${ufrag}:evil`);
  noMi.addFingerprint();
  r = decodeStun(await request(sock, noMi.toBuffer(), port))!;
  t.equal(getErrorCode(r)!.code, 400, 'missing MESSAGE-INTEGRITY → 400');

  // 9. Authenticated but missing PRIORITY: 400, and nothing learned.
  const noPrio = stun.createMessage(0x0001, newTransactionId());
  noPrio.addUsername(`${ufrag}:evil`);
  noPrio.addIceControlled(Buffer.alloc(8, 1));
  noPrio.addMessageIntegrity(pwd);
  noPrio.addFingerprint();
  r = decodeStun(await request(sock, noPrio.toBuffer(), port))!;
  t.equal(getErrorCode(r)!.code, 400, 'missing PRIORITY → 400');

  const st = a.getStats();
  t.equal(st.dropped.malformed, 51, 'malformed STUN counted');
  t.equal(st.dropped.unauthorizedSource, 1, 'data from an unchecked source counted');
  t.equal(st.dropped.unknownTransaction, 1, 'forged response counted');
  t.equal(st.dropped.badFingerprint, 1, 'bad fingerprint counted');
  t.equal(st.dropped.unknownUsername, 1);
  t.equal(st.dropped.badIntegrity, 1);
  t.equal(st.dropped.badRequest, 2);
  t.equal(st.errorResponsesSent, 4);
  t.equal(a.getRemoteCandidates(s, 1).length, 0, 'no remote candidate learned');
  t.equal(a.getPairs(s).length, 0, 'no pair formed');
  t.equal(a.getComponentState(s, 1), stateBefore, 'component state unchanged');
  t.equal(events, 0, 'no event fired');
});

t.test('a credentialed peer checking from many ports cannot grow the tables without bound', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, maxRemoteCandidates: 16, maxPairs: 10 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  const { ufrag, pwd } = a.getLocalCredentials(s);
  const port = a.getLocalCandidates(s, 1)[0]!.port;
  const socks: dgram.Socket[] = [];
  t.teardown(() => socks.forEach((x) => x.close()));
  for (let i = 0; i < 40; i++) {
    const sock = await rawSocket();
    socks.push(sock);
    const req = encodeBindingRequest({
      transactionId: newTransactionId(), username: `${ufrag}:peer`, password: pwd, priority: 1000 + i,
      controlling: false, tieBreaker: 1n, useCandidate: false,
    });
    const r = decodeStun(await request(sock, req, port))!;
    t.equal(r.cls, 'success', `check ${i} answered`);
  }
  t.equal(a.getRemoteCandidates(s, 1).length, 16, 'remote candidates capped');
  t.ok(a.getPairs(s).length <= 10, 'pairs capped');
  t.ok(a.getStats().dropped.tableFull >= 24, 'refusals counted');
});

t.test('garbage aimed at a ready component does not disturb it', async (t) => {
  const p = await makePair({}, {});
  const sock = await rawSocket();
  t.teardown(async () => {
    sock.close();
    await closeAll(p.a, p.b);
  });
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  const before = p.a.getSelectedPair(1, 1)!;
  const port = before.local.port;
  for (let i = 0; i < 100; i++) sock.send(Buffer.from([i & 3, 1, 2, 3, 4, 5]), port, '127.0.0.1');
  for (let i = 0; i < 100; i++) sock.send(Buffer.from([0x80, i]), port, '127.0.0.1');
  const got = new Promise<Buffer>((res) => p.a.attachRecv(1, 1, (d) => res(d)));
  p.b.send(1, 1, Buffer.from([0x80, 0xaa]));
  t.same(await got, Buffer.from([0x80, 0xaa]), 'only the real peer\'s data is delivered');
  t.same(p.a.getSelectedPair(1, 1), before, 'selected pair unchanged');
  t.equal(p.a.getComponentState(1, 1), 'ready');
});
