import t from 'tap';
import {
  FoundationRegistry,
  TYPE_PREFERENCE,
  computePriority,
  foundationKey,
  hostLocalPreference,
  orderHostAddresses,
} from '../lib/candidate.js';

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

// RFC 8445 §5.1.1.3 + RFC 8839 §5.1 (foundation = 1*32ice-char): the registry hands out foundations.
t.test('FoundationRegistry: same key → same foundation, different → different', async (t) => {
  const reg = new FoundationRegistry();
  const keys: string[] = [];
  for (let i = 1; i <= 12; i++) keys.push(foundationKey('host', `10.0.0.${i}`, 'udp'));
  const first = keys.map((k) => reg.get(k));
  t.equal(new Set(first).size, 12, '12 different keys, 12 different foundations');
  for (const f of first) t.match(f, /^[A-Za-z0-9+/]{1,32}$/, `foundation ${JSON.stringify(f)} is 1..32 ice-chars`);
  t.strictSame(keys.map((k) => reg.get(k)), first, 'asking again returns the same foundations');
  t.equal(reg.get(keys[0]!), first[0], 'first key still maps to its own foundation after 11 others');
  // Keys that are prefixes of each other, like '1' and '11', are distinct keys.
  const reg2 = new FoundationRegistry();
  const f1 = reg2.get('1');
  const f11 = reg2.get('11');
  const f111 = reg2.get('111');
  t.not(f1, f11, "keys '1' and '11' differ");
  t.not(f11, f111, "keys '11' and '111' differ");
  t.equal(reg2.get('11'), f11, "key '11' stable");
  t.equal(reg2.get('1'), f1, "key '1' stable");
  // Two registries are independent agents: each starts its own numbering, but inside one, equality is by key only.
  const reg3 = new FoundationRegistry();
  const a = reg3.get(foundationKey('host', '10.0.0.1', 'udp'));
  const b = reg3.get(foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.1'));
  const c = reg3.get(foundationKey('srflx', '10.0.0.1', 'udp', '198.51.100.1'));
  t.not(a, b, 'host and srflx of one base differ');
  t.equal(b, c, 'two srflx of the same base via the same server share a foundation');
});
