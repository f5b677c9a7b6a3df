/** Host candidate addresses (RFC 8445 §5.1.1.1, RFC 8421) and the sockets behind them. */
import t from 'tap';
import { hostAddresses, isLinkLocalV6 } from '../lib/gather/host.js';
import { Agent } from '../lib/index.js';
import type { InterfaceAddress } from '../lib/transport/network.js';

const ni = (address: string, internal = false): InterfaceAddress => ({ address, internal });

// What os.networkInterfaces() reports, flattened (lib/transport/network.ts InterfaceAddress).
const IFACES: InterfaceAddress[] = [
  ni('127.0.0.1', true), ni('::1', true), // lo
  ni('198.51.100.7'), ni('2001:db8::7'), ni('fe80::1'), // eth0
  ni('203.0.113.9'), ni('::ffff:203.0.113.9'), // eth1
];

t.test('every usable interface address, loopback and link-local excluded, IPv6 and IPv4 interleaved (RFC 8421)', async (t) => {
  t.same(hostAddresses({ localAddresses: undefined, ipv4: true, ipv6: true }, IFACES),
    ['2001:db8::7', '198.51.100.7', '203.0.113.9']);
  t.same(hostAddresses({ localAddresses: undefined, ipv4: true, ipv6: false }, IFACES), ['198.51.100.7', '203.0.113.9']);
  t.same(hostAddresses({ localAddresses: undefined, ipv4: false, ipv6: true }, IFACES), ['2001:db8::7']);
});

t.test('localAddresses restricts gathering; loopback only when listed', async (t) => {
  t.same(hostAddresses({ localAddresses: ['127.0.0.1'], ipv4: true, ipv6: true }, IFACES), ['127.0.0.1']);
  t.same(hostAddresses({ localAddresses: ['127.0.0.1', '::1', '127.0.0.1'], ipv4: true, ipv6: true }, IFACES), ['::1', '127.0.0.1']);
  t.same(hostAddresses({ localAddresses: ['fe80::1', '127.0.0.1'], ipv4: true, ipv6: true }, IFACES), ['127.0.0.1'], 'link-local never');
});

t.test('interface addresses are taken in canonical form (RFC 5952) and counted once', async (t) => {
  const ifaces = [
    ni('2001:DB8:0:0:0:0:0:7'), ni('2001:db8::7'), ni('2001:0db8::0007'), // one address, three spellings
    ni('FE80:0:0:0:0:0:0:2'), // link-local, upper case
    ni('::FFFF:C000:201'), // IPv4-mapped, hex
    ni('192.0.2.1'), ni('192.0.2.1'),
  ];
  t.same(hostAddresses({ localAddresses: undefined, ipv4: true, ipv6: true }, ifaces), ['2001:db8::7', '192.0.2.1'],
    'duplicates removed, link-local and IPv4-mapped left out whatever their spelling');
  t.same(hostAddresses({ localAddresses: ['2001:DB8::0:7', '2001:db8:0::7'], ipv4: true, ipv6: true }, []), ['2001:db8::7'],
    'localAddresses canonicalised and deduplicated too');
  t.same(hostAddresses({ localAddresses: undefined, ipv4: true, ipv6: true }, []), [], 'no interfaces: nothing');
  t.same(hostAddresses({ localAddresses: undefined, ipv4: true, ipv6: true }, [ni('127.0.0.1', true), ni('::1', true)]), [],
    'only loopback: nothing unless listed');
  t.same(hostAddresses({ localAddresses: ['::ffff:127.0.0.1'], ipv4: true, ipv6: true }, []), [],
    'an IPv4-mapped address is not gathered on even when listed');
});

t.test('isLinkLocalV6', async (t) => {
  for (const a of ['fe80::1', 'FE80::abcd', 'febf::1', 'fe80::', 'fe9a:1::1']) t.ok(isLinkLocalV6(a), a);
  for (const a of ['fec0::1', '2001:db8::1', '::1', 'fe8::1', 'fe80', 'ff02::1', '::ffff:254.128.0.1']) t.notOk(isLinkLocalV6(a), a);
});

t.test('portRange: every host socket is bound inside the range; IPv4 and IPv6 loopback get distinct preferences', async (t) => {
  const a = new Agent({ localAddresses: ['127.0.0.1', '::1'], portRange: { min: 41000, max: 41010 } });
  t.teardown(() => a.close());
  const s = a.addStream(2);
  await a.gatherCandidates(s);
  const all = [...a.getLocalCandidates(s, 1), ...a.getLocalCandidates(s, 2)];
  t.equal(all.length, 4, 'one socket per address per component');
  for (const c of all) t.ok(c.port >= 41000 && c.port <= 41010, `${c.address}:${c.port} inside the range`);
  const c1 = a.getLocalCandidates(s, 1);
  t.equal(c1[0]!.address, '::1', 'IPv6 ranks first (RFC 8421)');
  t.ok(c1[0]!.priority > c1[1]!.priority, 'and gets the higher priority');
  t.not(c1[0]!.foundation, c1[1]!.foundation, 'different base addresses, different foundations');
  t.equal(a.getLocalCandidates(s, 2)[0]!.foundation, c1[0]!.foundation, 'same base address across components, same foundation');
  t.equal(c1[0]!.priority - a.getLocalCandidates(s, 2)[0]!.priority, 1, 'component 2 is one below component 1');
});

t.test('a port range with no free port leaves the component without candidates, and gathering still finishes', async (t) => {
  const a = new Agent({ localAddresses: ['127.0.0.1'], portRange: { min: 41020, max: 41020 } });
  const b = new Agent({ localAddresses: ['127.0.0.1'], portRange: { min: 41020, max: 41020 } });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const sa = a.addStream(1);
  await a.gatherCandidates(sa);
  t.equal(a.getLocalCandidates(sa, 1)[0]!.port, 41020);
  const sb = b.addStream(1);
  await b.gatherCandidates(sb);
  t.same(b.getLocalCandidates(sb, 1), [], 'the port is taken: no candidate');
});
