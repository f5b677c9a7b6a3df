/**
 * lib/core/lite-answer.ts: a lite agent's steady-state answer to consent
 * requests on its selected pair gives exactly what the general path gives —
 * the same response bytes, the same counters, the same errors for what it
 * hands over — fed the same requests, with and without it.
 */
import t from 'tap';
import { Agent, UdpMux } from '../lib/index.js';
import { nodeNetwork } from '../lib/transport/node-network.js';
import type { DatagramSocket, Network } from '../lib/transport/network.js';
import type { TransportAddress } from '../lib/transport/address.js';
import { BindingRequestTemplate } from '../lib/stun/binding.js';
import { IntegrityKey } from '../lib/stun/integrity.js';
import { ATTR, FINGERPRINT_XOR, crcTo, decodeStun, findAttribute, getErrorCode } from '../lib/stun/message.js';
import { liteAnswer } from '../lib/core/lite-answer.js';
import fc from 'fast-check';
import { buildStun } from './support/fuzz-stun.js';

const LOCAL = { ufrag: 'srvufrag', pwd: 'serverpasswordserverpass' };
const REMOTE = { ufrag: 'cliufrag', pwd: 'clientpasswordclientpass' };
const FROM = { address: '127.0.0.2', port: 20000 };

/** An agent on a mux whose one socket is a stub: requests are fed in, answers collected. */
async function liteAgent() {
  let feed: ((data: Buffer, from: TransportAddress) => void) | undefined;
  const out: Buffer[] = [];
  const sock: DatagramSocket = {
    local: { address: '127.0.0.1', port: 3478 },
    send: (data) => { out.push(Buffer.from(data)); return true; },
    onMessage: (h) => { feed = h; },
    close: () => Promise.resolve(),
  };
  const network = new Proxy(nodeNetwork, {
    get: (target, prop) => {
      if (prop === 'bindDatagram') return () => Promise.resolve(sock);
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Network;
  const mux = await UdpMux.bind({ addresses: ['127.0.0.1'], network });
  const agent = new Agent({ iceLite: true, udpMux: mux, network });
  const stream = agent.addStream(1);
  agent.setLocalCredentials(stream, LOCAL.ufrag, LOCAL.pwd);
  await agent.gatherCandidates(stream);
  agent.setRemoteCredentials(stream, REMOTE.ufrag, REMOTE.pwd);
  agent.setRemoteCandidates(stream, 1, [`candidate:1 1 udp 2130706431 ${FROM.address} ${FROM.port} typ host`]);
  return { agent, mux, feed: (d: Buffer, from: TransportAddress = FROM) => feed!(d, from), out };
}

function request(opts: { useCandidate?: boolean; controlled?: boolean; password?: string } = {}): Buffer {
  const tpl = new BindingRequestTemplate({
    username: `${LOCAL.ufrag}:${REMOTE.ufrag}`, password: opts.password ?? LOCAL.pwd, priority: 1845501695,
    controlling: !opts.controlled, tieBreaker: 77n, useCandidate: opts.useCandidate ?? false,
  });
  return tpl.build(Buffer.from('0123456789ab'));
}

/** `req` with an attribute added before MESSAGE-INTEGRITY (or after it), signed again. */
function withAttribute(req: Buffer, type: number, value: Buffer, afterIntegrity = false): Buffer {
  const mi = findAttribute(req, ATTR.MESSAGE_INTEGRITY);
  const tlv = Buffer.alloc(4 + ((value.length + 3) & ~3));
  tlv.writeUInt16BE(type, 0);
  tlv.writeUInt16BE(value.length, 2);
  value.copy(tlv, 4);
  const head = afterIntegrity ? req.subarray(0, mi) : Buffer.concat([req.subarray(0, mi), tlv]);
  const out = Buffer.concat([head, Buffer.alloc(24), afterIntegrity ? tlv : Buffer.alloc(0), Buffer.alloc(8)]);
  const miOff = head.length;
  out.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, miOff);
  out.writeUInt16BE(20, miOff + 2);
  new IntegrityKey(LOCAL.pwd).sign(out, miOff, out, miOff + 4);
  const fp = out.length - 8;
  out.writeUInt16BE(out.length - 20, 2);
  out.writeUInt16BE(ATTR.FINGERPRINT, fp);
  out.writeUInt16BE(4, fp + 2);
  out.writeUInt32BE((crcTo(out, fp) ^ FINGERPRINT_XOR) >>> 0, fp + 4);
  return out;
}

function counters(a: Agent) {
  const st = a.getStats();
  const pairs = st.streams.flatMap((s) => s.components.flatMap((c) => c.pairs.map((p) => [p.id, p.state, p.nominated, p.requestsReceived, p.responsesSent])));
  return { packetsReceived: st.packetsReceived, stunRequestsReceived: st.stunRequestsReceived, responsesSent: st.responsesSent, errorResponsesSent: st.errorResponsesSent, roleConflicts: st.roleConflicts, dropped: st.dropped, pairs, state: a.getComponentState(1, 1) };
}

t.test('the same requests, with and without the lite answer: the same responses, counters and state', async (t) => {
  const fast = await liteAgent();
  const slow = await liteAgent();
  const inputs: Array<[string, Buffer, TransportAddress?]> = [
    ['nomination', request({ useCandidate: true })],
    ...Array.from({ length: 5 }, (_, i): [string, Buffer] => [`consent ${i}`, request()]),
    ...Array.from({ length: 3 }, (_, i): [string, Buffer] => [`consent with USE-CANDIDATE ${i}`, request({ useCandidate: true })]),
    ['SOFTWARE', withAttribute(request(), ATTR.SOFTWARE, Buffer.from('test'))],
    ['an attribute after MESSAGE-INTEGRITY', withAttribute(request(), ATTR.USE_CANDIDATE, Buffer.alloc(0), true)],
    ['an unknown comprehension-required attribute', withAttribute(request(), 0x7777, Buffer.from([1, 2, 3, 4]))],
    ['a wrong password', request({ password: 'not-the-password-at-all' })],
    ['ICE-CONTROLLED (a role conflict)', request({ controlled: true })],
    ['two PRIORITY attributes', withAttribute(request(), ATTR.PRIORITY, Buffer.from([0, 0, 0, 0]))],
    ['from another port', request(), { address: FROM.address, port: FROM.port + 1 }],
    ['consent again', request()],
  ];
  const answered0 = liteAnswer.answered;
  let fastTook = 0;
  for (const [name, req, from] of inputs) {
    const before = liteAnswer.answered;
    liteAnswer.enabled = true;
    fast.feed(req, from);
    fastTook += liteAnswer.answered - before;
    liteAnswer.enabled = false;
    slow.feed(req, from);
    liteAnswer.enabled = true;
    t.same(fast.out.at(-1), slow.out.at(-1), `${name}: the same answer`);
    t.same(counters(fast.agent), counters(slow.agent), `${name}: the same counters and state`);
  }
  t.equal(fast.out.length, slow.out.length, 'as many answers');
  t.ok(fastTook >= 9, `the lite answer took the plain consent requests (${fastTook} of ${inputs.length})`);
  t.equal(liteAnswer.answered - answered0, fastTook, 'and none of the other agent\'s');
  const codes = slow.out.map((b) => getErrorCode(decodeStun(b)!)?.code ?? 0);
  t.same(codes.filter((c) => c !== 0).sort(), [400, 401, 420, 487].filter((c) => codes.includes(c)).sort(), `the errors of the general path: ${codes.join(',')}`);
  t.ok(codes.includes(401) && codes.includes(420) && codes.includes(487), 'a 401, a 420 and a 487 among them');
  for (const x of [fast, slow]) {
    await x.agent.close();
    await x.mux.close();
  }
});

t.test('property: any request on the selected pair — attributes added, dropped, repeated, resized, reordered, signed or not — gets the same answer and counters with and without the lite answer', async (t) => {
  const fast = await liteAgent();
  const slow = await liteAgent();
  const nominate = request({ useCandidate: true });
  liteAnswer.enabled = true;
  fast.feed(nominate);
  liteAnswer.enabled = false;
  slow.feed(nominate);
  liteAnswer.enabled = true;
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
  const attr = fc.oneof(
    fc.constantFrom(
      { type: ATTR.USERNAME, value: Buffer.from(`${LOCAL.ufrag}:${REMOTE.ufrag}`) },
      { type: ATTR.USERNAME, value: Buffer.from(`${LOCAL.ufrag}x:${REMOTE.ufrag}`) },
      { type: ATTR.USERNAME, value: Buffer.from(LOCAL.ufrag) },
      { type: ATTR.USERNAME, value: Buffer.from(`${LOCAL.ufrag.slice(0, 4)}:${REMOTE.ufrag}`) },
      { type: ATTR.PRIORITY, value: u32(1845501695) },
      { type: ATTR.PRIORITY, value: u32(0) },
      { type: ATTR.PRIORITY, value: Buffer.alloc(8, 1) },
      { type: ATTR.ICE_CONTROLLING, value: Buffer.alloc(8, 7) },
      { type: ATTR.ICE_CONTROLLING, value: Buffer.alloc(4, 7) },
      { type: ATTR.ICE_CONTROLLED, value: Buffer.alloc(8, 0xff) },
      { type: ATTR.USE_CANDIDATE, value: Buffer.alloc(0) },
      { type: ATTR.NOMINATION, value: u32(5) },
      { type: ATTR.SOFTWARE, value: Buffer.from('fuzz') },
      { type: 0x7777, value: Buffer.alloc(3) },
      { type: 0x8888, value: Buffer.alloc(2) },
      { type: ATTR.MESSAGE_INTEGRITY_SHA256, value: Buffer.alloc(32) },
    ),
    fc.record({ type: fc.integer({ min: 0, max: 0xffff }), value: fc.uint8Array({ maxLength: 12 }) }),
  );
  const base: Array<{ type: number; value: Uint8Array }> = [
    { type: ATTR.USERNAME, value: Buffer.from(`${LOCAL.ufrag}:${REMOTE.ufrag}`) },
    { type: ATTR.PRIORITY, value: u32(1845501695) },
    { type: ATTR.ICE_CONTROLLING, value: Buffer.alloc(8, 7) },
  ];
  const spec = fc.record({
    // Often a request the lite answer can take (the base whole, nothing or something harmless added), often not.
    drop: fc.constantFrom(3, 3, 3, 0, 1, 2), // 3: keep all of the base
    extra: fc.oneof(fc.constant([]), fc.array(attr, { maxLength: 4 })),
    at: fc.nat(),
    integrity: fc.constantFrom('good', 'good', 'good', 'bad', 'none'),
    after: fc.oneof(fc.constant([]), fc.constant([]), fc.array(attr, { maxLength: 1 })),
    tid: fc.uint8Array({ minLength: 12, maxLength: 12 }),
  });
  let fastTook = 0;
  let runs = 0;
  await fc.assert(fc.asyncProperty(spec, async (x) => {
    runs++;
    const attrs = base.filter((_, i) => i !== x.drop);
    attrs.splice(x.at % (attrs.length + 1), 0, ...x.extra);
    const req = buildStun({
      type: 0x0001, tid: x.tid, attrs,
      integrity: x.integrity === 'none' ? undefined : { key: Buffer.from(LOCAL.pwd), valid: x.integrity === 'good' },
      after: [...x.after], fingerprint: 'good',
    });
    const before = liteAnswer.answered;
    liteAnswer.enabled = true;
    const n = fast.out.length;
    fast.feed(req);
    fastTook += liteAnswer.answered - before;
    liteAnswer.enabled = false;
    slow.feed(req);
    liteAnswer.enabled = true;
    if (fast.out.length !== slow.out.length) return false;
    if (fast.out.length > n && !fast.out.at(-1)!.equals(slow.out.at(-1)!)) return false;
    return JSON.stringify(counters(fast.agent)) === JSON.stringify(counters(slow.agent));
  }), { seed: 20261202, numRuns: 400 });
  t.ok(fastTook > 20 && fastTook < runs, `the lite answer took ${fastTook} of ${runs} requests and left the rest to the general path`);
  t.equal(fast.agent.getComponentState(1, 1), 'ready', 'the session is still ready');
  for (const x of [fast, slow]) {
    await x.agent.close();
    await x.mux.close();
  }
});
