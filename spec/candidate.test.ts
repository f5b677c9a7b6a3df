import t from 'tap';
import {
  type Candidate,
  TYPE_PREFERENCE,
  checkRemoteCandidate,
  computePriority,
  copyCandidate,
  foundationKey,
  foundationOf,
  hostLocalPreference,
  localPreferenceOf,
  orderHostAddresses,
  unusableReason,
  usableRemote,
} from '../lib/core/candidate.js';
import { CandidateParseError, InvalidArgumentError } from '../lib/errors.js';

// RFC 8445 §5.1.2.1: priority = 2^24*(type preference) + 2^8*(local preference) + 2^0*(256 - component ID).
// RFC 8445 §5.1.2.2 recommended type preferences: host 126, prflx 110, srflx 100, relayed 0.
t.test('computePriority: hand-computed RFC 8445 §5.1.2.1 values', async (t) => {
  t.strictSame(
    { ...TYPE_PREFERENCE },
    { host: 126, prflx: 110, srflx: 100, relay: 0 },
    'recommended type preferences of §5.1.2.2',
  );
  // 126*16777216 = 2113929216; 65535*256 = 16776960; 256-1 = 255.
  t.equal(computePriority('host', 65535, 1), 2130706431, 'host, 65535, component 1');
  t.equal(computePriority('host', 65535, 2), 2130706430, 'host, 65535, component 2 (RTCP) is one lower');
  // 110*16777216 = 1845493760
  t.equal(computePriority('prflx', 65535, 1), 1862270975, 'prflx, 65535, component 1');
  // 100*16777216 = 1677721600
  t.equal(computePriority('srflx', 65535, 1), 1694498815, 'srflx, 65535, component 1');
  t.equal(computePriority('relay', 65535, 1), 16777215, 'relay, 65535, component 1 = 2^24 - 1');
  t.equal(computePriority('host', 0, 256), 2113929216, 'host, local preference 0, component 256: type part only');
  t.equal(computePriority('relay', 0, 256), 0, 'lowest possible priority is 0');
  t.equal(computePriority('srflx', 1, 1), 1677721600 + 256 + 255, 'local preference weighs 2^8');
  t.equal(computePriority('host', 65407, 1), 2113929216 + 65407 * 256 + 255, 'non-maximal local preference');
  // The ordering the type preferences are for: host > prflx > srflx > relay whatever the local preference.
  t.ok(computePriority('host', 0, 256) > computePriority('prflx', 65535, 1), 'any host above any prflx');
  t.ok(computePriority('prflx', 0, 256) > computePriority('srflx', 65535, 1), 'any prflx above any srflx');
  t.ok(computePriority('srflx', 0, 256) > computePriority('relay', 65535, 1), 'any srflx above any relay');
  // §5.1.2.1: the result must fit in 32 bits (it is carried by the PRIORITY attribute).
  t.ok(computePriority('host', 65535, 1) < 2 ** 31, 'host maximum fits in 31 bits');
});

t.test('computePriority: range errors (§5.1.2.1 local preference 0..65535, component 1..256)', async (t) => {
  for (const lp of [-1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => computePriority('host', lp, 1), RangeError, `local preference ${lp}`);
  }
  for (const c of [0, 257, -1, 1.5, Number.NaN]) {
    t.throws(() => computePriority('host', 65535, c), RangeError, `component ${c}`);
  }
  t.doesNotThrow(() => computePriority('host', 0, 1), 'local preference 0 accepted');
  t.doesNotThrow(() => computePriority('host', 65535, 256), 'component 256 accepted');
});

// RFC 8445 §5.1.2.1: local preference 0..65535, 65535 when single-homed; a multihomed agent
// gives each IP address a distinct local preference. RFC 8421 §4 orders them.
t.test('hostLocalPreference: in range, distinct and decreasing (§5.1.2.1)', async (t) => {
  t.equal(hostLocalPreference(0), 65535, 'first (or only) address gets 65535');
  const prefs: number[] = [];
  for (let rank = 0; rank < 64; rank++) prefs.push(hostLocalPreference(rank));
  for (const p of prefs) {
    t.ok(Number.isInteger(p) && p >= 0 && p <= 65535, `${p} is an integer in 0..65535`);
  }
  t.equal(new Set(prefs).size, prefs.length, '64 ranks give 64 distinct preferences');
  let decreasing = true;
  for (let i = 1; i < prefs.length; i++) if (!(prefs[i]! < prefs[i - 1]!)) decreasing = false;
  t.ok(decreasing, 'strictly decreasing with rank');
  t.ok(hostLocalPreference(10000) >= 0, 'never negative for a huge rank');
});

// RFC 8421 §4: interleave address families, starting with IPv6, keeping the order inside each family.
t.test('orderHostAddresses: RFC 8421 interleaving, IPv6 first', async (t) => {
  const input = ['10.0.0.1', '10.0.0.2', '2001:db8::1', '2001:db8::2', '2001:db8::3'];
  const copy = [...input];
  t.strictSame(
    orderHostAddresses(input),
    ['2001:db8::1', '10.0.0.1', '2001:db8::2', '10.0.0.2', '2001:db8::3'],
    'v6, v4, v6, v4, leftover v6',
  );
  t.strictSame(input, copy, 'input array not mutated');
  t.strictSame(
    orderHostAddresses(['192.0.2.1', '192.0.2.2', '192.0.2.3', 'fd00::1']),
    ['fd00::1', '192.0.2.1', '192.0.2.2', '192.0.2.3'],
    'leftover IPv4 keep their relative order',
  );
  t.strictSame(orderHostAddresses(['192.0.2.9', '192.0.2.1']), ['192.0.2.9', '192.0.2.1'], 'single family: order kept');
  t.strictSame(orderHostAddresses([]), [], 'empty');
  t.strictSame(
    orderHostAddresses(['::ffff:10.0.0.1', '10.0.0.1']),
    ['::ffff:10.0.0.1', '10.0.0.1'],
    'IPv4-mapped IPv6 counts as IPv6',
  );
});

// RFC 8445 §5.1.1.3: same foundation iff same type, same base IP, same STUN/TURN server IP, same transport.
t.test('foundationKey: every field of §5.1.1.3 matters', async (t) => {
  const base = foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.1');
  t.equal(foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.1'), base, 'same fields, same key');
  t.not(foundationKey('host', '10.0.0.1', 'udp', '198.51.100.1'), base, 'type differs');
  t.not(foundationKey('prflx', '10.0.0.1', 'udp', '198.51.100.1'), base, 'type differs (prflx)');
  t.not(foundationKey('srflx', '10.0.0.2', 'udp', '198.51.100.1'), base, 'base address differs');
  t.not(foundationKey('srflx', '10.0.0.1', 'tcp', '198.51.100.1'), base, 'transport differs');
  t.not(foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.2'), base, 'server address differs');
  t.not(foundationKey('srflx', '10.0.0.1', 'udp'), base, 'no server vs a server');
  t.equal(foundationKey('host', '10.0.0.1', 'udp'), foundationKey('host', '10.0.0.1', 'udp', ''), 'server defaults to none');
  // Field boundaries are not ambiguous: base "10.0.0.1" + server "1.2.3.4" vs base "10.0.0.11" + server ".2.3.4"-like shifts.
  t.not(foundationKey('host', '10.0.0.1', 'udp', '1.2.3.4'), foundationKey('host', '10.0.0.11', 'udp', '.2.3.4'), 'no concatenation ambiguity');
});

// RFC 8445 §5.1.1.3 + RFC 8839 §5.1 (foundation = 1*32ice-char): the registry (a Map in the agent's state)
// hands out foundations.
t.test('foundationOf: same key → same foundation, different → different', async (t) => {
  const reg = new Map<string, string>();
  const keys: string[] = [];
  for (let i = 1; i <= 12; i++) keys.push(foundationKey('host', `10.0.0.${i}`, 'udp'));
  const first = keys.map((k) => foundationOf(reg, k));
  t.equal(new Set(first).size, 12, '12 different keys, 12 different foundations');
  for (const f of first) t.match(f, /^[A-Za-z0-9+/]{1,32}$/, `foundation ${JSON.stringify(f)} is 1..32 ice-chars`);
  t.strictSame(keys.map((k) => foundationOf(reg, k)), first, 'asking again returns the same foundations');
  t.equal(foundationOf(reg, keys[0]!), first[0], 'first key still maps to its own foundation after 11 others');
  t.equal(reg.size, 12, 'the registry is the plain Map passed in: one entry per key');
  // Keys that are prefixes of each other, like '1' and '11', are distinct keys.
  const reg2 = new Map<string, string>();
  const f1 = foundationOf(reg2, '1');
  const f11 = foundationOf(reg2, '11');
  const f111 = foundationOf(reg2, '111');
  t.not(f1, f11, "keys '1' and '11' differ");
  t.not(f11, f111, "keys '11' and '111' differ");
  t.equal(foundationOf(reg2, '11'), f11, "key '11' stable");
  t.equal(foundationOf(reg2, '1'), f1, "key '1' stable");
  // Two registries are independent agents: each starts its own numbering, but inside one, equality is by key only.
  const reg3 = new Map<string, string>();
  const a = foundationOf(reg3, foundationKey('host', '10.0.0.1', 'udp'));
  const b = foundationOf(reg3, foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.1'));
  const c = foundationOf(reg3, foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.1'));
  t.not(a, b, 'host and srflx of one base differ');
  t.equal(b, c, 'two srflx of the same base via the same server share a foundation');
  // The state is plain data: a copy of the Map carries on the same numbering.
  const copy = new Map(reg3);
  t.equal(foundationOf(copy, foundationKey('host', '10.0.0.1', 'udp')), a, 'a copied registry knows the old keys');
  t.equal(foundationOf(copy, 'new'), foundationOf(new Map(reg3), 'new'), 'and numbers new keys the same way');
  t.not(foundationOf(copy, 'new'), a, 'without reusing a foundation in use');
});

// §7.1.1: PRIORITY of a check keeps the local preference of the local candidate; localPreferenceOf extracts it.
t.test('localPreferenceOf: bits 8-23 of a priority (§5.1.2.1, §7.1.1)', async (t) => {
  for (const [type, lp, comp] of [['host', 65535, 1], ['srflx', 0, 256], ['relay', 12345, 2], ['prflx', 65407, 17]] as const) {
    t.equal(localPreferenceOf(computePriority(type, lp, comp)), lp, `${type} ${lp} component ${comp}`);
  }
  t.equal(localPreferenceOf(0xffffffff), 65535, 'the largest 32-bit priority');
  t.equal(computePriority('prflx', localPreferenceOf(2130706431), 1), 1862270975, 'host priority → PRIORITY of its check');
});

// RFC 8839: transport and typ tokens this agent does not use parse (candidate-attribute.ts); the agent
// then skips them when they are added, with a reason.
t.test('usableRemote / unusableReason: extension transports and types are skipped, not errors', async (t) => {
  const c = (o: Partial<Candidate>): Candidate => ({
    type: 'host', transport: 'udp', foundation: '1', component: 1, priority: 1, address: '192.0.2.1', port: 5, ...o,
  });
  t.equal(usableRemote(c({})), true, 'udp host IPv4');
  t.equal(usableRemote(c({ address: '2001:db8::1' })), true, 'udp host IPv6');
  for (const type of ['host', 'srflx', 'prflx', 'relay']) t.equal(usableRemote(c({ type })), true, `type ${type}`);
  t.equal(usableRemote(c({ transport: 'sctp' })), false, 'extension transport');
  t.match(unusableReason(c({ transport: 'sctp' })), /transport sctp/, 'reason names the transport');
  t.equal(usableRemote(c({ transport: 'tcp', tcpType: 'passive' })), false, 'TCP: not without ICE-TCP (iceTcp)');
  t.equal(usableRemote(c({ transport: 'tcp', tcpType: 'passive' }), { iceUdp: true, iceTcp: true }), true, 'TCP with iceTcp');
  t.equal(usableRemote(c({ transport: 'tcp' }), { iceUdp: true, iceTcp: true }), false, 'but never without a tcptype');
  t.equal(usableRemote(c({}), { iceUdp: false, iceTcp: true }), false, 'UDP: not with iceUdp off');
  t.equal(usableRemote(c({ type: 'local' })), false, 'unknown type token');
  t.match(unusableReason(c({ type: 'local' })), /candidate type local/, 'reason names the type');
  // `typ toString` is a valid cand-type token (RFC 8839), so the parser hands it over.
  // (Found by this test: `c.type in TYPE_PREFERENCE` walked Object.prototype.)
  for (const type of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
    t.equal(usableRemote(c({ type })), false, `type ${type} (an Object.prototype member name) is unknown too`);
    t.match(unusableReason(c({ type })), /is not supported/, `type ${type}: the reason says so`);
  }
  t.equal(usableRemote(checkRemoteCandidate('candidate:1 1 udp 1 192.0.2.1 5 typ constructor', 1, 'c')), false,
    'also when it comes from a candidate string');
  t.equal(usableRemote(c({ address: 'abc.local' })), false, 'mDNS name');
  t.match(unusableReason(c({ address: 'abc.local' })), /mDNS/, 'reason says mDNS');
  t.equal(usableRemote(c({ address: 'turn.example.org' })), false, 'FQDN');
  t.match(unusableReason(c({ address: 'turn.example.org' })), /not an IP address/, 'reason says FQDN');
});

// checkRemoteCandidate validates without touching state and puts addresses in canonical form (RFC 5952),
// so that candidates and datagram sources compare equal.
t.test('checkRemoteCandidate: validation and canonical form', async (t) => {
  const ok: Candidate = { type: 'host', transport: 'UDP' as Candidate['transport'], foundation: 'a', component: 1, priority: 100, address: '2001:DB8:0:0:0:0:0:1', port: 5000 };
  const input = { ...ok, base: { address: '10.0.0.1', port: 1 }, streamId: 3 };
  const out = checkRemoteCandidate(input, 1, 'candidate');
  t.equal(out.address, '2001:db8::1', 'IPv6 in RFC 5952 form');
  t.equal(out.transport, 'udp', 'transport lower-cased');
  t.notOk('base' in out, 'no base on a remote candidate');
  t.notOk('streamId' in out, 'no streamId');
  t.equal(input.address, '2001:DB8:0:0:0:0:0:1', 'the input object is not modified');
  t.ok('base' in input, 'nor stripped');
  t.equal(checkRemoteCandidate({ ...ok, address: '::ffff:192.0.2.7' }, 1, 'c').address, '192.0.2.7', 'IPv4-mapped → IPv4');
  t.equal(checkRemoteCandidate({ ...ok, address: '::FFFF:C000:207' }, 1, 'c').address, '192.0.2.7', 'hex IPv4-mapped → IPv4');
  t.equal(checkRemoteCandidate({ ...ok, type: 'srflx', relatedAddress: '2001:0db8::0:1', relatedPort: 9 }, 1, 'c').relatedAddress,
    '2001:db8::1', 'related address canonical too');
  t.equal(checkRemoteCandidate({ ...ok, address: 'x.local' }, 1, 'c').address, 'x.local', 'an FQDN passes (skipped later)');
  const fromString = checkRemoteCandidate('candidate:1 1 UDP 2130706431 2001:DB8:0:0:1:0:0:1 5000 typ host', undefined, 'c');
  t.equal(fromString.address, '2001:db8::1:0:0:1', 'a string is parsed and canonicalised (first of two equal zero runs)');
  t.equal(fromString.transport, 'udp');
  // Extension tokens parse; they are not usable.
  const ext = checkRemoteCandidate('candidate:1 1 sctp 1 192.0.2.1 5 typ local', undefined, 'c');
  t.equal(ext.transport, 'sctp');
  t.equal(ext.type, 'local');
  t.equal(usableRemote(ext), false, 'parsed, and then skipped');

  const bad: Array<[string, Partial<Candidate> | null, string]> = [
    ['empty type', { type: '' }, 'candidate.type'],
    ['empty transport', { transport: '' }, 'candidate.transport'],
    ['foundation with a space', { foundation: 'a b' }, 'candidate.foundation'],
    ['foundation 33 chars', { foundation: 'f'.repeat(33) }, 'candidate.foundation'],
    ['priority 0', { priority: 0 }, 'candidate.priority'],
    ['priority 2^32', { priority: 2 ** 32 }, 'candidate.priority'],
    ['priority 1.5', { priority: 1.5 }, 'candidate.priority'],
    ['empty address', { address: '' }, 'candidate.address'],
    ['address with a zone id', { address: 'fe80::1%eth0' }, 'candidate.address'],
    ['address with a space', { address: '1.2.3.4 5' }, 'candidate.address'],
    ['port 0 on udp', { port: 0 }, 'candidate.port'],
    ['port 65536', { port: 65536 }, 'candidate.port'],
    ['component 0', { component: 0 }, 'candidate.component'],
    ['bad related address', { relatedAddress: 'nope nope', relatedPort: 1 }, 'candidate.relatedAddress'],
    ['related port 70000', { relatedAddress: '1.2.3.4', relatedPort: 70000 }, 'candidate.relatedPort'],
    ['component of another call', { component: 2 }, 'candidate.component'],
  ];
  for (const [name, patch, argument] of bad) {
    try {
      checkRemoteCandidate({ ...ok, ...patch } as Candidate, 1, 'candidate');
      t.fail(`${name}: should throw`);
    } catch (err) {
      t.ok(err instanceof InvalidArgumentError, `${name}: InvalidArgumentError`);
      t.equal((err as InvalidArgumentError).argument, argument, `${name}: names ${argument}`);
    }
  }
  t.throws(() => checkRemoteCandidate(null as unknown as Candidate, 1, 'candidate'), InvalidArgumentError, 'null');
  t.throws(() => checkRemoteCandidate('candidate:1 1 udp 1 1.2.3.4', 1, 'c'), CandidateParseError, 'a bad string: parse error');
  t.equal(checkRemoteCandidate({ ...ok, transport: 'tcp', tcpType: 'active', port: 0 }, 1, 'c').port, 0, 'port 0 for active TCP (RFC 6544)');
});

t.test('copyCandidate: no object shared with the agent state', async (t) => {
  const c: Candidate = {
    type: 'srflx', transport: 'udp', foundation: '1', component: 1, priority: 1, address: '192.0.2.1', port: 5,
    base: { address: '10.0.0.1', port: 6 }, relatedAddress: '10.0.0.1', relatedPort: 6, extensions: [['generation', '0']],
  };
  const copy = copyCandidate(c);
  t.strictSame(copy, c, 'equal content');
  t.not(copy, c);
  t.not(copy.base, c.base, 'base copied');
  t.not(copy.extensions, c.extensions, 'extensions copied');
  t.not(copy.extensions![0], c.extensions![0], 'each extension pair copied');
  copy.extensions![0]![1] = '9';
  (copy.base as { port: number }).port = 99;
  t.equal(c.extensions![0]![1], '0', 'original extensions untouched');
  t.equal(c.base!.port, 6, 'original base untouched');
  const { base: _base, ...noBase } = c;
  t.notOk('base' in copyCandidate(noBase), 'no base invented for a candidate without one');
});

// Found by `npm run fuzz` (candidate.objects, seed 20261202): a sparse extensions array passed
// Array.prototype.every (it skips holes) and its hole later threw a TypeError while serialising.
t.test('checkRemoteCandidate: extensions with a hole is an InvalidArgumentError naming extensions', async (t) => {
  const ok = { type: 'host', transport: 'udp', foundation: 'A', component: 1, priority: 1, address: '::1', port: 9 } as const;
  // eslint-disable-next-line no-sparse-arrays
  const sparse = [, ['generation', '0']] as unknown as Array<[string, string]>;
  let error: unknown;
  try { checkRemoteCandidate({ ...ok, extensions: sparse }, 1, 'candidate'); } catch (e) { error = e; }
  t.ok(error instanceof InvalidArgumentError, 'an InvalidArgumentError', { error });
  t.match((error as Error | undefined)?.message, /extensions/, 'naming the field');
  t.equal(checkRemoteCandidate({ ...ok, extensions: [['generation', '0']] }, 1, 'candidate').extensions?.length, 1, 'a dense list still passes');
});
