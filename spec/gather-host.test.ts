/** Host candidate addresses (RFC 8445 §5.1.1.1, RFC 8421) and the sockets behind them. */
import t from 'tap';
import type os from 'node:os';
import { hostAddresses, isLinkLocalV6 } from '../lib/gather/host.js';
import { Agent } from '../lib/index.js';

const ni = (address: string, internal = false): os.NetworkInterfaceInfo => ({
  address,
  internal,
  family: address.includes(':') ? 'IPv6' : 'IPv4',
  netmask: '',
  mac: '00:00:00:00:00:00',
  cidr: null,
  ...(address.includes(':') ? { scopeid: 0 } : {}),
} as os.NetworkInterfaceInfo);

const IFACES = {
  lo: [ni('127.0.0.1', true), ni('::1', true)],
  eth0: [ni('198.51.100.7'), ni('2001:db8::7'), ni('fe80::1')],
  eth1: [ni('203.0.113.9'), ni('::ffff:203.0.113.9')],
};

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

t.test('isLinkLocalV6', async (t) => {
  for (const a of ['fe80::1', 'FE80::abcd', 'febf::1']) t.ok(isLinkLocalV6(a), a);
  for (const a of ['fec0::1', '2001:db8::1', '::1']) t.notOk(isLinkLocalV6(a), a);
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
