/** Transport addresses in one canonical form (lib/transport/address.ts): RFC 5952 text, as inet_ntop prints it. */
import t from 'tap';
import { SocketAddress, isIPv4 } from 'node:net';
import {
  addressKey, canonicalIp, formatAddress, ipv4Bytes, isV6, sameAddress, transportKey,
} from '../lib/transport/address.js';

// RFC 5952 §4: one text form per IPv6 address. §4.1 leading zeros dropped; §4.2.1 "::" as long as possible;
// §4.2.2 not for a single 16-bit 0 field; §4.2.3 the longest run, the first one on a tie; §4.3 lower case;
// §5 IPv4-mapped addresses in mixed notation.
t.test('canonicalIp: RFC 5952 examples', async (t) => {
  const cases: Array<[string, string, string]> = [
    // §1 / §2: the same address, many spellings.
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1', '§4.2.1 zero groups compressed'],
    ['2001:DB8::1', '2001:db8::1', '§4.3 lower case'],
    ['2001:0db8:0:0::0001', '2001:db8::1', '§4.1 leading zeros dropped'],
    ['2001:db8::0:1', '2001:db8::1', '§4.2.1 "::" as long as possible'],
    ['2001:db8:0:0:0::1', '2001:db8::1', 'the same address once more'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1', 'fully written out'],
    ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:0001', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:1', '§4.1 a single leading zero group'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', '§4.2.2 a single 0 group is not compressed'],
    ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1', '§4.2.2 ... not even when written compressed'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1', '§4.2.3 the longest run is compressed'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1', '§4.2.3 longest run, not the first'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', '§4.2.3 equal runs: the first one'],
    ['2001:db8::aaaa:0:0:1', '2001:db8::aaaa:0:0:1', '§4.2.3 equal runs, already compressed first'],
    ['2001:db8:0:0:aaaa::1', '2001:db8::aaaa:0:0:1', '§4.2.3 equal runs, compressed second: moved to the first'],
    ['0:0:0:0:0:0:0:0', '::', 'unspecified'],
    ['::', '::', 'unspecified, compressed'],
    ['0:0:0:0:0:0:0:1', '::1', 'loopback'],
    ['1:0:0:0:0:0:0:0', '1::', 'trailing run'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::', 'trailing run after one group'],
    ['ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789', 'no zeros at all'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', '"::" for a single trailing 0 group is expanded'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8', '"::" for a single leading 0 group is expanded'],
    // §5: IPv4-mapped, mixed notation.
    ['::ffff:c000:201', '::ffff:192.0.2.1', '§5 IPv4-mapped in mixed notation'],
    ['::FFFF:C000:0201', '::ffff:192.0.2.1', '§5 from upper case hex'],
    ['0:0:0:0:0:ffff:192.0.2.1', '::ffff:192.0.2.1', '§5 from the full form'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1', '§5 already canonical'],
    ['::ffff:0:0', '::ffff:0.0.0.0', '§5 mapped 0.0.0.0'],
    ['::ffff:ffff:ffff', '::ffff:255.255.255.255', '§5 mapped 255.255.255.255'],
    ['::ffff:0:1.2.3.4', '::ffff:0:102:304', 'not mapped (ffff in the wrong group): hex'],
    ['::1:ffff:1.2.3.4', '::1:ffff:102:304', 'not mapped (a non-zero prefix group): hex'],
    // IPv4: dotted decimal.
    ['192.0.2.1', '192.0.2.1', 'IPv4 unchanged'],
    ['0.0.0.0', '0.0.0.0', 'IPv4 any'],
    ['255.255.255.255', '255.255.255.255', 'IPv4 broadcast'],
  ];
  for (const [input, want, why] of cases) t.equal(canonicalIp(input), want, `${input} → ${want} (${why})`);
});

t.test('canonicalIp: zone ids and anything that is not an IP address → undefined', async (t) => {
  const bad = [
    'fe80::1%eth0', 'fe80::1%1', 'fe80::1%', '::1%lo', // zone ids (RFC 4007 §11): meaningless to a peer
    '', ' ', 'localhost', 'example.org', 'abc.local',
    '1::2::3', ':::1', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::1', 'g::1', '::ffff:1.2.3', '::1.2.3.4.5',
    '[::1]', '::1 ', ' ::1', '::1/128', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8',
    '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.-1', '1.2.3.4 ', '1.2.3.4:80', '0x7f.0.0.1', '1e2.0.0.1',
  ];
  for (const a of bad) t.equal(canonicalIp(a), undefined, JSON.stringify(a));
  // Leading zeros: some stacks read `010` as octal 8, so the text is ambiguous and refused.
  for (const a of ['01.2.3.4', '1.2.3.04', '0127.0.0.1', '192.168.001.1', '00.0.0.0', '::ffff:01.2.3.4', '::ffff:1.2.3.004']) {
    t.equal(canonicalIp(a), undefined, `${a}: IPv4 with a leading zero`);
  }
  for (const x of [undefined, null, 1, {}, ['::1']]) t.equal(canonicalIp(x as unknown as string), undefined, `non-string ${JSON.stringify(x)}`);
});

t.test('addressKey, transportKey, formatAddress, isV6, sameAddress', async (t) => {
  t.equal(formatAddress('192.0.2.1', 5000), '192.0.2.1:5000');
  t.equal(formatAddress('2001:db8::1', 5000), '[2001:db8::1]:5000', 'IPv6 in brackets (RFC 5952 §6)');
  t.equal(formatAddress('::ffff:192.0.2.1', 1), '[::ffff:192.0.2.1]:1', 'IPv4-mapped is IPv6');
  t.not(addressKey('2001:db8::1', 1), addressKey('2001:db8::1', 2), 'ports distinguish keys');
  t.not(addressKey('::1', 12), addressKey('::11', 2), 'no ambiguity between address and port');
  t.not(addressKey('10.0.0.1', 12), addressKey('10.0.0.11', 2), 'no ambiguity between address and port (IPv4)');
  t.equal(addressKey(canonicalIp('2001:DB8:0:0:0:0:0:1')!, 9), addressKey(canonicalIp('2001:db8::1')!, 9), 'spellings of one address: one key');
  t.not(transportKey('udp', '10.0.0.1', 1), transportKey('tcp', '10.0.0.1', 1), 'protocol distinguishes transport keys');
  t.equal(isV6('::1'), true);
  t.equal(isV6('::ffff:192.0.2.1'), true);
  t.equal(isV6('192.0.2.1'), false);
  t.equal(sameAddress({ address: '::1', port: 1 }, { address: '::1', port: 1 }), true);
  t.equal(sameAddress({ address: '::1', port: 1 }, { address: '::1', port: 2 }), false);
  t.equal(sameAddress({ address: '::1', port: 1 }, { address: '::2', port: 1 }), false);
});

// ------------------------------------------------------------------ property tests

/** mulberry32: a small seeded PRNG, so failures replay. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Eight random groups, biased so that runs of zeros (of every length, ties
 * included), 0xffff and IPv4-mapped prefixes are common.
 */
function randomGroups(rnd: () => number): number[] {
  const zeroRate = [0, 0.3, 0.6, 0.9][Math.floor(rnd() * 4)]!;
  const g = Array.from({ length: 8 }, () => {
    if (rnd() < zeroRate) return 0;
    const r = rnd();
    if (r < 0.1) return 0xffff;
    if (r < 0.3) return Math.floor(rnd() * 16);
    return Math.floor(rnd() * 0x10000);
  });
  if (rnd() < 0.1) g.splice(0, 6, 0, 0, 0, 0, 0, 0xffff); // IPv4-mapped
  return g;
}

/** Other spellings of the same address: full form, leading zeros, upper case, "::" anywhere it fits, embedded IPv4. */
function spellings(g: readonly number[], rnd: () => number): string[] {
  const hex = (x: number, pad: boolean) => (pad ? x.toString(16).padStart(4, '0') : x.toString(16));
  const out = [g.map((x) => hex(x, false)).join(':'), g.map((x) => hex(x, true)).join(':').toUpperCase()];
  // Any run of zero groups (of length >= 1) may be the "::".
  for (let i = 0; i < 8; i++) {
    for (let j = i + 1; j <= 8 && g[j - 1] === 0; j++) {
      const mixed = g.map((x) => hex(x, rnd() < 0.5));
      out.push(`${mixed.slice(0, i).join(':')}::${mixed.slice(j).join(':')}`);
    }
  }
  // The last 32 bits in dotted decimal (RFC 4291 §2.2 form 3).
  const v4 = `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  out.push(`${g.slice(0, 6).map((x) => hex(x, false)).join(':')}:${v4}`);
  return out;
}

/**
 * WHATWG URL serialises IPv6 hosts per RFC 5952 §4 but never in mixed notation; inet_ntop writes the last
 * 32 bits in dotted decimal for IPv4-mapped addresses (RFC 5952 §5, `::ffff:a.b.c.d`) and for IPv4-compatible
 * ones (RFC 4291 §2.5.5.1, `::a.b.c.d`: the first six groups zero, the seventh not).
 */
function viaUrl(text: string): string {
  const host = new URL(`http://[${text}]/`).hostname.replace(/^\[|\]$/g, '');
  const m = /^::(ffff:)?([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!m) return host;
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `::${m[1] ?? ''}${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

t.test('property: canonicalIp is idempotent, spelling-independent, and agrees with URL (RFC 5952) plus inet_ntop\'s mixed notation — seeded', async (t) => {
  const seed = 0x5952;
  const rnd = prng(seed);
  const failures: string[] = [];
  const N = 4000;
  let mapped = 0;
  let compatible = 0;
  let compressed = 0;
  for (let i = 0; i < N && failures.length < 10; i++) {
    const g = randomGroups(rnd);
    const plain = g.map((x) => x.toString(16)).join(':');
    const c = canonicalIp(plain);
    if (c === undefined) {
      failures.push(`${plain}: undefined`);
      continue;
    }
    if (c.startsWith('::ffff:') && c.includes('.')) mapped++;
    else if (c.includes('.')) compatible++;
    if (c.includes('::')) compressed++;
    if (canonicalIp(c) !== c) failures.push(`${plain}: not idempotent (${c} → ${canonicalIp(c)})`);
    const want = viaUrl(plain);
    if (c !== want) failures.push(`${plain}: ${c}, URL/RFC 5952 says ${want}`);
    for (const s of spellings(g, rnd)) {
      if (canonicalIp(s) !== c) failures.push(`${s} (= ${plain}): ${canonicalIp(s)} instead of ${c}`);
    }
  }
  t.strictSame(failures, [], `seed ${seed}, ${N} addresses`);
  t.ok(mapped > 100, `the generator reached IPv4-mapped addresses (${mapped})`);
  t.ok(compatible > 20, `and IPv4-compatible ones (${compatible})`);
  t.ok(compressed > N / 2, `and compressed forms (${compressed})`);
});

// lib/transport/address.ts promises "what the operating system's inet_ntop prints, which is what Node gives
// as the source of a datagram" (node-network.ts passes rinfo.address through on that promise). Node's own
// inet_ntop (libuv's, the one rinfo uses) can be asked without a socket through net.SocketAddress.
t.test('property: canonicalIp agrees with Node\'s inet_ntop (net.SocketAddress, as rinfo prints) — seeded', async (t) => {
  const seed = 8445;
  const rnd = prng(seed);
  const mismatches = new Map<string, string>();
  let compatible = 0;
  for (let i = 0; i < 4000; i++) {
    const g = randomGroups(rnd);
    if (g.slice(0, 6).every((x) => x === 0) && g[6] !== 0) compatible++;
    const plain = g.map((x) => x.toString(16)).join(':');
    const ntop = new SocketAddress({ address: plain, family: 'ipv6' }).address;
    if (canonicalIp(plain) !== ntop) mismatches.set(plain, `${canonicalIp(plain)} vs ${ntop}`);
  }
  t.strictSame(Object.fromEntries(mismatches), {}, `seed ${seed}, 4000 addresses`);
  t.ok(compatible > 20, `IPv4-compatible addresses included (${compatible})`);
});

// IPv4-compatible addresses (::a.b.c.d, RFC 4291 §2.5.5.1, deprecated): inet_ntop prints them in mixed
// notation when the zero run is exactly the first six groups. (Found by this file: canonicalIp printed
// ::102:304 while a datagram from that address reports ::1.2.3.4; lib/transport/address.ts now agrees.)
t.test('IPv4-compatible addresses (::a.b.c.d) as Node\'s inet_ntop prints them', async (t) => {
  const cases: Array<[string, string]> = [
    ['::1.2.3.4', '::1.2.3.4'],
    ['::102:304', '::1.2.3.4'],
    ['0:0:0:0:0:0:c000:201', '::192.0.2.1'],
    ['::ffff:0', '::255.255.0.0'],
    ['::ffff:ffff', '::255.255.255.255'],
    ['::1:0', '::0.1.0.0'],
    ['::0.0.0.1', '::1'], // the loopback: a run of seven
    ['::0.0.0.2', '::2'],
    ['::0.0.0.0', '::'],
    ['1::1.2.3.4', '1::102:304'], // not IPv4-compatible: a non-zero first group
  ];
  for (const [input, want] of cases) {
    t.equal(new SocketAddress({ address: input, family: 'ipv6' }).address, want, `${input}: Node prints ${want} (control)`);
    t.equal(canonicalIp(input), want, `${input} → ${want}`);
  }
  t.equal(canonicalIp('::1.2.3.4'), canonicalIp('0:0:0:0:0:0:102:304'), 'one address, one canonical form');
});

// ipv4Bytes is the hand-written parser on the path of every answered check: it must accept exactly what
// net.isIPv4 accepts and give the four octets.
t.test('ipv4Bytes agrees with net.isIPv4 and gives the octets', async (t) => {
  t.same(ipv4Bytes('127.0.0.1'), Uint8Array.of(127, 0, 0, 1));
  t.same(ipv4Bytes('203.0.113.255'), Uint8Array.of(203, 0, 113, 255));
  t.same(ipv4Bytes('0.0.0.0'), Uint8Array.of(0, 0, 0, 0));
  const odd = ['', '1', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '256.1.1.1', '01.2.3.4', '1.2.3.04',
    '1.2.3.4 ', 'a.b.c.d', '1.2.3.-4', '1000.2.3.4', '::1', '::ffff:1.2.3.4', '1.2.3.4%eth0'];
  for (const s of odd) t.equal(ipv4Bytes(s), undefined, `${JSON.stringify(s)} is not a dotted quad`);
  // Seeded sweep over short strings of digits and dots.
  let seed = 20261202;
  const next = (): number => (seed = (seed * 1103515245 + 12345) >>> 0);
  const alphabet = '0123456789.';
  let mismatches = 0;
  for (let i = 0; i < 20000; i++) {
    const len = 1 + (next() % 16);
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[next() % alphabet.length];
    const bytes = ipv4Bytes(s);
    if ((bytes !== undefined) !== isIPv4(s)) mismatches++;
    else if (bytes && Array.from(bytes).join('.') !== s) mismatches++;
  }
  t.equal(mismatches, 0, 'no string where ipv4Bytes and net.isIPv4 disagree');
});
