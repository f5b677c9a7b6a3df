/**
 * Logs an operator can follow (agent id in every line, an injected logger,
 * a trace level) and failures that are not silent. On the in-memory network.
 */
import t from 'tap';
import {
  Agent, GatheringError, InvalidArgumentError, InvalidStateError, UnknownStreamError, type Logger,
} from '../lib/index.js';
import { SimNetwork } from '../lib/sim/index.js';
import { simPair, exchange, closePair, during } from './support/sim-pair.js';

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (m: string) => { lines.push(`${level} ${m}`); };
  return { lines, logger: { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

t.test('a trace logger shows the session: candidates, pairs and their states, requests with source and tx, RTT, selection', async (t) => {
  const A = capture();
  const B = capture();
  const p = await simPair({ servers: false, a: { logger: A.logger, logLevel: 'trace', name: 'alice' }, b: { logger: B.logger, logLevel: 'trace', name: 'bob' } });
  exchange(p);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  await p.net.run({ for: 6000 });
  const a = A.lines.join('\n');
  t.ok(A.lines.every((l) => l.includes('[alice]')), 'every line of A names A');
  t.ok(B.lines.every((l) => l.includes('[bob]')), 'every line of B names B');
  t.match(a, /gather: \[alice\] stream 1 component 1: local candidate host 198\.51\.100\.2:\d+/, 'local candidates');
  t.match(a, /check: \[alice\] stream 1 component 1: pair host:198\.51\.100\.2:\d+ -> host:198\.51\.100\.3:\d+ \(frozen\) formed/, 'pair creation');
  t.match(a, /check: \[alice\] stream 1 component 1: check host:.* tx [0-9a-f]{24} ICE-CONTROLLING/, 'checks with tx and role');
  t.match(a, /request from 198\.51\.100\.3:\d+ tx [0-9a-f]{24} user [A-Za-z0-9+/]+:[A-Za-z0-9+/]+ ICE-CONTROLLED/, 'inbound requests with source, tx, role');
  t.match(a, /success response from 198\.51\.100\.3:\d+ tx [0-9a-f]{24} rtt \d+\.\d ms/, 'responses with RTT');
  t.match(a, /USE-CANDIDATE/, 'nomination');
  t.match(a, /info agent: \[alice\] stream 1 component 1: selected pair/, 'the selected pair, at info');
  t.match(a, /connecting -> connected/, 'component state changes');
  t.match(a, /consent request/, 'consent checks marked as such');
  t.match(B.lines.join('\n'), /request from .* USE-CANDIDATE/, 'the controlled side logs the nomination it received');
  await closePair(p);
});

t.test('the reason of every failure is logged; logLevel filters; a throwing logger does not break the agent', async (t) => {
  const L = capture();
  const p = await simPair({ servers: false, a: { logger: L.logger, stunMaxRetransmissions: 1 } });
  p.a.setRemoteCandidates(1, 1, ['candidate:1 1 udp 2130706431 198.51.100.99 5000 typ host']);
  await p.net.run({ until: () => p.a.getComponentState(1, 1) === 'failed', timeout: 10_000 });
  t.ok(L.lines.some((l) => /warn agent: .* -> failed \(every candidate pair failed\)/.test(l)), 'failed, with the reason, at warn');
  t.notOk(L.lines.some((l) => l.startsWith('trace')), 'no trace lines at the default level (info) of an injected logger');
  await closePair(p);
  const net = new SimNetwork({ seed: 1 });
  const h = net.addHost('198.51.100.4');
  const bad: Logger = { debug() { throw new Error('boom'); }, info() { throw new Error('boom'); }, warn() { throw new Error('boom'); }, error() { throw new Error('boom'); } };
  const a = new Agent({ network: h.network, logger: bad, logLevel: 'trace' });
  const s = a.addStream(1);
  await during({ net } as never, a.gatherCandidates(s));
  t.equal(a.getLocalCandidates(s, 1).length, 1, 'gathering went on');
  await during({ net } as never, a.close());
});

t.test('no silent failures: unusable local addresses, skipped remote candidates, oversized datagrams, bad ids', async (t) => {
  const net = new SimNetwork({ seed: 2 });
  const h = net.addHost('198.51.100.4');
  const errors: GatheringError[] = [];
  const a = new Agent({ network: h.network, localAddresses: ['198.51.100.4', '203.0.113.99'] });
  a.on('gathering-error', (_s, _c, e) => errors.push(e));
  const s = a.addStream(1);
  await during({ net } as never, a.gatherCandidates(s));
  t.equal(errors.length, 1, 'a local address not on this host is an event');
  t.match(errors[0], { address: '203.0.113.99', systemCode: 'EADDRNOTAVAIL', code: 'ERR_ICE_GATHERING' });
  t.type(errors[0], GatheringError);
  // A port range with no free port.
  const b = new Agent({ network: h.network, localAddresses: ['198.51.100.4'], portRange: { min: a.getLocalCandidates(s, 1)[0]!.port, max: a.getLocalCandidates(s, 1)[0]!.port } });
  const full: GatheringError[] = [];
  b.on('gathering-error', (_s, _c, e) => full.push(e));
  const sb = b.addStream(1);
  await during({ net } as never, b.gatherCandidates(sb));
  t.equal(full[0]?.systemCode, 'EADDRINUSE', 'a used-up port range is an event');

  const skipped: string[] = [];
  a.on('remote-candidate-skipped', (_s, _c, reason) => skipped.push(reason));
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  t.equal(a.setRemoteCandidates(s, 1, [
    'candidate:1 1 udp 2130706431 6d3d5e0b-74d2-4f4a-9c6b-4b5d9b7e3f11.local 5000 typ host',
    'candidate:2 1 tcp 2105458943 198.51.100.9 9 typ host tcptype active',
  ]), 0);
  t.equal(skipped.length, 2, 'mDNS and TCP candidates are reported, not dropped without a word');
  t.match(skipped.join(' | '), /mDNS name .*\.local/);

  t.equal(a.send(s, 1, Buffer.alloc(10)), false, 'no pair yet: send() is false');
  t.throws(() => a.setLocalCredentials(s, 'abcd', 'x'), InvalidArgumentError);
  t.throws(() => a.removeStream(99), UnknownStreamError, 'removeStream(99) throws at once, like the other id-taking methods');
  t.throws(() => a.getLocalCandidates('1' as unknown as number, 1), InvalidArgumentError, 'a string stream id is a bad argument, not "no stream 1"');
  await during({ net } as never, Promise.all([a.close(), b.close()]));

  // Oversized datagrams and local credentials once checks ran.
  const p = await simPair({ servers: false });
  exchange(p);
  await during(p, Promise.all([p.a.connect(1), p.b.connect(1)]));
  t.equal(p.a.send(1, 1, Buffer.alloc(70_000)), false, 'a datagram larger than UDP can carry: false (no EMSGSIZE hidden behind true)');
  t.throws(() => p.a.setLocalCredentials(1, 'abcd', 'abcdefghijklmnopqrstuvwxyz'), InvalidStateError, 'local credentials cannot change on a running stream');
  await closePair(p);
});
