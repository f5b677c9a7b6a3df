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
