import t from 'tap';
import type { Candidate } from '../lib/core/candidate.js';
import { CandidateParseError } from '../lib/errors.js';
import { parseCandidate, serializeCandidate } from '../lib/core/candidate-attribute.js';

const valid: Array<[string, string, Candidate]> = [
  [
    'libnice host',
    'candidate:1 1 UDP 2013266431 127.0.0.1 39841 typ host',
    { foundation: '1', component: 1, transport: 'udp', priority: 2013266431, address: '127.0.0.1', port: 39841, type: 'host' },
  ],
  [
    'srflx with raddr/rport',
    'candidate:2 1 udp 1694498815 203.0.113.7 50000 typ srflx raddr 192.168.1.2 rport 40000',
    {
      foundation: '2', component: 1, transport: 'udp', priority: 1694498815, address: '203.0.113.7', port: 50000,
      type: 'srflx', relatedAddress: '192.168.1.2', relatedPort: 40000,
    },
  ],
  [
    'prflx, component 2',
    'candidate:a+b/C 2 udp 1845501695 10.0.0.5 1234 typ prflx raddr 10.0.0.1 rport 999',
    {
      foundation: 'a+b/C', component: 2, transport: 'udp', priority: 1845501695, address: '10.0.0.5', port: 1234,
      type: 'prflx', relatedAddress: '10.0.0.1', relatedPort: 999,
    },
  ],
  [
    'relay',
    'candidate:3 1 udp 16777215 198.51.100.1 3478 typ relay raddr 203.0.113.7 rport 50000',
    {
      foundation: '3', component: 1, transport: 'udp', priority: 16777215, address: '198.51.100.1', port: 3478,
      type: 'relay', relatedAddress: '203.0.113.7', relatedPort: 50000,
    },
  ],
  [
    'IPv6, upper case normalised',
    'candidate:4 1 udp 2122262783 2001:DB8::AbCd 5000 typ host',
    { foundation: '4', component: 1, transport: 'udp', priority: 2122262783, address: '2001:db8::abcd', port: 5000, type: 'host' },
  ],
  [
    'IPv6 raddr',
    'candidate:5 1 udp 1686052607 2001:db8::1 6000 typ srflx raddr FE80::1 rport 6001',
    {
      foundation: '5', component: 1, transport: 'udp', priority: 1686052607, address: '2001:db8::1', port: 6000,
      type: 'srflx', relatedAddress: 'fe80::1', relatedPort: 6001,
    },
  ],
  [
    'mDNS .local',
    'candidate:6 1 udp 2113937151 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54321 typ host generation 0',
    {
      foundation: '6', component: 1, transport: 'udp', priority: 2113937151,
      address: '1f4712db-ea17-4bcf-a596-105139dfd8bf.local', port: 54321, type: 'host', extensions: [['generation', '0']],
    },
  ],
  [
    'tcp active, port 9',
    'candidate:7 1 TCP 1518280447 192.168.1.2 9 typ host tcptype active',
    { foundation: '7', component: 1, transport: 'tcp', priority: 1518280447, address: '192.168.1.2', port: 9, type: 'host', tcpType: 'active' },
  ],
  [
    'tcp active, port 0 (RFC 6544)',
    'candidate:7 1 tcp 1518280447 192.168.1.2 0 typ host tcptype active',
    { foundation: '7', component: 1, transport: 'tcp', priority: 1518280447, address: '192.168.1.2', port: 0, type: 'host', tcpType: 'active' },
  ],
  [
    'tcp passive srflx with extensions after tcptype',
    'candidate:8 1 tcp 1518214911 203.0.113.7 443 typ srflx raddr 192.168.1.2 rport 443 tcptype passive generation 0',
    {
      foundation: '8', component: 1, transport: 'tcp', priority: 1518214911, address: '203.0.113.7', port: 443,
      type: 'srflx', relatedAddress: '192.168.1.2', relatedPort: 443, tcpType: 'passive', extensions: [['generation', '0']],
    },
  ],
  [
    'tcp so, tcptype after another extension',
    'candidate:9 1 tcp 1518149375 192.168.1.2 5000 typ host generation 1 tcptype so',
    {
      foundation: '9', component: 1, transport: 'tcp', priority: 1518149375, address: '192.168.1.2', port: 5000,
      type: 'host', tcpType: 'so', extensions: [['generation', '1']],
    },
  ],
  [
    'Chrome-style with a= and CRLF',
    'a=candidate:842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag abcd network-id 1 network-cost 10\r\n',
    {
      foundation: '842163049', component: 1, transport: 'udp', priority: 1677729535, address: '203.0.113.7', port: 61665,
      type: 'srflx', relatedAddress: '0.0.0.0', relatedPort: 0,
      extensions: [['generation', '0'], ['ufrag', 'abcd'], ['network-id', '1'], ['network-cost', '10']],
    },
  ],
  [
    'bare LF, runs of blanks, trailing blank',
    'candidate:1 1\tudp   1 255.255.255.255 65535 typ host \n',
    { foundation: '1', component: 1, transport: 'udp', priority: 1, address: '255.255.255.255', port: 65535, type: 'host' },
  ],
  [
    'limits: 32-char foundation, component 256, max priority',
    `candidate:${'x'.repeat(32)} 256 udp 4294967295 0.0.0.0 1 typ relay`,
    { foundation: 'x'.repeat(32), component: 256, transport: 'udp', priority: 4294967295, address: '0.0.0.0', port: 1, type: 'relay' },
  ],
  // Changed on purpose: RFC 8839 §5.1 `transport = "UDP" / transport-extension` (a token) and
  // `candidate-types = "host" / "srflx" / "prflx" / "relay" / token`: unknown tokens parse (the agent skips
  // such candidates when they are added). `[SP rel-addr] [SP rel-port]`: each is optional on its own.
  [
    'changed: extension transport token parses (transport-extension)',
    'candidate:1 1 SCTP 1 1.2.3.4 5 typ host',
    { foundation: '1', component: 1, transport: 'sctp', priority: 1, address: '1.2.3.4', port: 5, type: 'host' },
  ],
  [
    'changed: old-draft tcp-so transport token parses',
    'candidate:1 1 tcp-so 1 1.2.3.4 5 typ host',
    { foundation: '1', component: 1, transport: 'tcp-so', priority: 1, address: '1.2.3.4', port: 5, type: 'host' },
  ],
  [
    'changed: unknown typ token parses',
    'candidate:1 1 udp 1 1.2.3.4 5 typ Local',
    { foundation: '1', component: 1, transport: 'udp', priority: 1, address: '1.2.3.4', port: 5, type: 'local' },
  ],
  [
    'changed: raddr without rport parses',
    'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1',
    { foundation: '1', component: 1, transport: 'udp', priority: 1, address: '1.2.3.4', port: 5, type: 'srflx', relatedAddress: '1.1.1.1' },
  ],
  [
    'changed: raddr without rport, then an extension',
    'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1 generation 0',
    {
      foundation: '1', component: 1, transport: 'udp', priority: 1, address: '1.2.3.4', port: 5, type: 'srflx',
      relatedAddress: '1.1.1.1', extensions: [['generation', '0']],
    },
  ],
  [
    'changed: rport without raddr parses',
    'candidate:1 1 udp 1 1.2.3.4 5 typ srflx rport 5',
    { foundation: '1', component: 1, transport: 'udp', priority: 1, address: '1.2.3.4', port: 5, type: 'srflx', relatedPort: 5 },
  ],
  [
    'changed: rport without raddr, then an extension',
    'candidate:1 1 udp 1 1.2.3.4 5 typ relay RPORT 0 network-id 2',
    {
      foundation: '1', component: 1, transport: 'udp', priority: 1, address: '1.2.3.4', port: 5, type: 'relay',
      relatedPort: 0, extensions: [['network-id', '2']],
    },
  ],
];

t.test('parses valid candidates (changed: extension transport/typ tokens and a lone raddr or rport parse)', async (t) => {
  for (const [name, line, expected] of valid) {
    const c = parseCandidate(line);
    t.strictSame(c, expected, name);
    t.notOk('base' in c, `${name}: no base`);
    t.notOk('streamId' in c, `${name}: no streamId`);
  }
});

t.test('round-trips', async (t) => {
  for (const [name, line] of valid) {
    const c = parseCandidate(line);
    const s = serializeCandidate(c);
    t.match(s, /^candidate:/, `${name}: no prefix by default`);
    t.strictSame(parseCandidate(s), c, `${name}: parse(serialize(c))`);
    const prefixed = serializeCandidate(c, { prefix: true });
    t.equal(prefixed, `a=${s}`, `${name}: prefix`);
    t.strictSame(parseCandidate(prefixed), c, `${name}: with a=`);
  }
});

t.test('serializes in canonical form', async (t) => {
  t.equal(
    serializeCandidate(parseCandidate('candidate:1 1 UDP 2013266431 127.0.0.1 39841 typ host')),
    'candidate:1 1 udp 2013266431 127.0.0.1 39841 typ host',
  );
  t.equal(
    serializeCandidate({
      foundation: '8', component: 1, transport: 'tcp', priority: 1, address: '2001:DB8::1', port: 443, type: 'srflx',
      relatedAddress: '10.0.0.1', relatedPort: 443, tcpType: 'passive', extensions: [['generation', '0']],
      base: { address: '10.0.0.1', port: 443 }, streamId: 1,
    }),
    'candidate:8 1 tcp 1 2001:db8::1 443 typ srflx raddr 10.0.0.1 rport 443 tcptype passive generation 0',
  );
});

const invalid: Array<[string, string, string]> = [
  ['empty string', '', 'candidate'],
  ['only a=', 'a=', 'candidate'],
  ['no candidate: prefix', '1 1 udp 1 1.2.3.4 5 typ host', 'candidate'],
  ['leading blank', ' candidate:1 1 udp 1 1.2.3.4 5 typ host', 'candidate'],
  ['blank after a=', 'a= candidate:1 1 udp 1 1.2.3.4 5 typ host', 'candidate'],
  ['wrong attribute', 'a=candidates:1 1 udp 1 1.2.3.4 5 typ host', 'candidate'],
  ['empty foundation', 'candidate: 1 1 udp 1 1.2.3.4 5 typ host', 'foundation'],
  ['foundation 33 chars', `candidate:${'a'.repeat(33)} 1 udp 1 1.2.3.4 5 typ host`, 'foundation'],
  ['foundation bad char', 'candidate:ab-c 1 udp 1 1.2.3.4 5 typ host', 'foundation'],
  ['component missing', 'candidate:1', 'component'],
  ['component 0', 'candidate:1 0 udp 1 1.2.3.4 5 typ host', 'component'],
  ['component 257', 'candidate:1 257 udp 1 1.2.3.4 5 typ host', 'component'],
  ['component 4 digits', 'candidate:1 0001 udp 1 1.2.3.4 5 typ host', 'component'],
  ['component signed', 'candidate:1 +1 udp 1 1.2.3.4 5 typ host', 'component'],
  ['component not a number', 'candidate:1 one udp 1 1.2.3.4 5 typ host', 'component'],
  ['transport missing', 'candidate:1 1', 'transport'],
  ['transport not a token', 'candidate:1 1 ud(p) 1 1.2.3.4 5 typ host', 'transport'],
  ['transport non-ASCII', 'candidate:1 1 üdp 1 1.2.3.4 5 typ host', 'transport'],
  ['priority 0', 'candidate:1 1 udp 0 1.2.3.4 5 typ host', 'priority'],
  ['priority 2^32', 'candidate:1 1 udp 4294967296 1.2.3.4 5 typ host', 'priority'],
  ['priority 11 digits', 'candidate:1 1 udp 01234567890 1.2.3.4 5 typ host', 'priority'],
  ['priority decimal', 'candidate:1 1 udp 1.5 1.2.3.4 5 typ host', 'priority'],
  ['priority negative', 'candidate:1 1 udp -1 1.2.3.4 5 typ host', 'priority'],
  ['priority exponent', 'candidate:1 1 udp 1e3 1.2.3.4 5 typ host', 'priority'],
  ['priority hex', 'candidate:1 1 udp 0x10 1.2.3.4 5 typ host', 'priority'],
  ['priority missing', 'candidate:1 1 udp', 'priority'],
  ['address missing', 'candidate:1 1 udp 1', 'address'],
  ['IPv4 octet 256', 'candidate:1 1 udp 1 1.2.3.256 5 typ host', 'address'],
  ['IPv4 leading zero', 'candidate:1 1 udp 1 01.2.3.4 5 typ host', 'address'],
  ['IPv4 three octets', 'candidate:1 1 udp 1 1.2.3 5 typ host', 'address'],
  ['IPv6 zone id', 'candidate:1 1 udp 1 fe80::1%eth0 5 typ host', 'address'],
  ['IPv6 bracketed', 'candidate:1 1 udp 1 [::1] 5 typ host', 'address'],
  ['IPv6 malformed', 'candidate:1 1 udp 1 2001:db8:::1 5 typ host', 'address'],
  ['FQDN empty label', 'candidate:1 1 udp 1 foo..local 5 typ host', 'address'],
  ['FQDN trailing dot', 'candidate:1 1 udp 1 foo.local. 5 typ host', 'address'],
  ['FQDN label 64 chars', `candidate:1 1 udp 1 ${'a'.repeat(64)}.local 5 typ host`, 'address'],
  ['FQDN over 253 chars', `candidate:1 1 udp 1 ${Array(5).fill('a'.repeat(63)).join('.')} 5 typ host`, 'address'],
  ['FQDN underscore', 'candidate:1 1 udp 1 foo_bar.local 5 typ host', 'address'],
  ['FQDN leading hyphen', 'candidate:1 1 udp 1 -foo.local 5 typ host', 'address'],
  ['port missing', 'candidate:1 1 udp 1 1.2.3.4', 'port'],
  ['port 65536', 'candidate:1 1 udp 1 1.2.3.4 65536 typ host', 'port'],
  ['port not a number', 'candidate:1 1 udp 1 1.2.3.4 http typ host', 'port'],
  ['port 0 udp', 'candidate:1 1 udp 1 1.2.3.4 0 typ host', 'port'],
  ['port 0 tcp passive', 'candidate:1 1 tcp 1 1.2.3.4 0 typ host tcptype passive', 'port'],
  ['typ keyword missing', 'candidate:1 1 udp 1 1.2.3.4 5 host', 'typ'],
  ['typ value missing', 'candidate:1 1 udp 1 1.2.3.4 5 typ', 'typ'],
  ['typ repeated', 'candidate:1 1 udp 1 1.2.3.4 5 typ host typ host', 'typ'],
  ['typ not a token', 'candidate:1 1 udp 1 1.2.3.4 5 typ ho@st', 'typ'],
  ['rport before raddr', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx rport 5 raddr 1.1.1.1', 'raddr'],
  ['raddr twice', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1 raddr 2.2.2.2', 'raddr'],
  ['rport twice', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1 rport 5 rport 6', 'rport'],
  ['rport without raddr, not a number', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx rport x', 'rport'],
  ['port 0 on an extension transport', 'candidate:1 1 sctp 1 1.2.3.4 0 typ host', 'port'],
  ['tcptype on an extension transport', 'candidate:1 1 sctp 1 1.2.3.4 5 typ host tcptype active', 'tcptype'],
  ['raddr invalid', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 999.1.1.1 rport 5', 'raddr'],
  ['raddr missing value', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr', 'raddr'],
  ['raddr after extension', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx generation 0 raddr 1.1.1.1 rport 5', 'raddr'],
  ['rport out of range', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1 rport 70000', 'rport'],
  ['rport missing value', 'candidate:1 1 udp 1 1.2.3.4 5 typ srflx raddr 1.1.1.1 rport', 'rport'],
  ['tcptype bad value', 'candidate:1 1 tcp 1 1.2.3.4 5 typ host tcptype server', 'tcptype'],
  ['tcptype missing value', 'candidate:1 1 tcp 1 1.2.3.4 5 typ host tcptype', 'tcptype'],
  ['tcptype on udp', 'candidate:1 1 udp 1 1.2.3.4 5 typ host tcptype active', 'tcptype'],
  ['tcptype twice', 'candidate:1 1 tcp 1 1.2.3.4 5 typ host tcptype active tcptype so', 'tcptype'],
  ['tcp without tcptype', 'candidate:1 1 tcp 1 1.2.3.4 5 typ host', 'tcptype'],
  ['extension without value', 'candidate:1 1 udp 1 1.2.3.4 5 typ host generation 0 ufrag', 'extension'],
  ['extension name not a token', 'candidate:1 1 udp 1 1.2.3.4 5 typ host gen(x) 0', 'extension'],
  ['extension value with control char', 'candidate:1 1 udp 1 1.2.3.4 5 typ host ufrag a\x01b', 'extension'],
  ['garbage after CRLF', 'candidate:1 1 udp 1 1.2.3.4 5 typ host generation 0\r\nx', 'extension'],
  ['two line endings', 'candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n\r\n', 'typ'],
];

t.test('rejects invalid candidates with the field at fault (changed: extension tokens and lone raddr/rport no longer rejected)', async (t) => {
  for (const [name, line, field] of invalid) {
    t.throws(() => parseCandidate(line), CandidateParseError, name);
    try {
      parseCandidate(line);
    } catch (err) {
      t.ok(err instanceof CandidateParseError, `${name}: is a CandidateParseError`);
      t.equal((err as CandidateParseError).field, field, `${name}: field`);
      t.equal((err as CandidateParseError).input, line, `${name}: input kept`);
      t.equal((err as CandidateParseError).code, 'ERR_ICE_CANDIDATE_PARSE', `${name}: code`);
    }
  }
});

const good: Candidate = {
  foundation: '1', component: 1, transport: 'udp', priority: 100, address: '1.2.3.4', port: 5, type: 'host',
};

const unserializable: Array<[string, Partial<Candidate>, string]> = [
  ['foundation with space', { foundation: 'a b' }, 'foundation'],
  ['empty foundation', { foundation: '' }, 'foundation'],
  ['component 0', { component: 0 }, 'component'],
  ['component 1.5', { component: 1.5 }, 'component'],
  ['transport not a token', { transport: 'ud p' }, 'transport'],
  ['empty transport', { transport: '' }, 'transport'],
  ['priority NaN', { priority: Number.NaN }, 'priority'],
  ['address with space', { address: '1.2.3.4 9' }, 'address'],
  ['port 0 on udp', { port: 0 }, 'port'],
  ['port 65536', { port: 65536 }, 'port'],
  ['type not a token', { type: 'a b' }, 'typ'],
  ['empty type', { type: '' }, 'typ'],
  ['relatedPort 65536 alone', { relatedPort: 65536 }, 'rport'],
  ['bad relatedAddress alone', { relatedAddress: '1.2.3.256' }, 'raddr'],
  ['bad relatedAddress', { relatedAddress: 'x y', relatedPort: 5 }, 'raddr'],
  ['tcpType on udp', { tcpType: 'active' }, 'tcptype'],
  ['tcp without tcpType', { transport: 'tcp' }, 'tcptype'],
  ['extension name with space', { extensions: [['a b', '1']] }, 'extension'],
  ['empty extension value', { extensions: [['generation', '']] }, 'extension'],
  ['reserved extension name', { extensions: [['raddr', '1.1.1.1']] }, 'extension'],
];

t.test('serializer refuses what the parser would reject (changed: extension tokens and lone raddr/rport serialize)', async (t) => {
  for (const [name, patch, field] of unserializable) {
    try {
      serializeCandidate({ ...good, ...patch });
      t.fail(`${name}: should throw`);
    } catch (err) {
      t.ok(err instanceof CandidateParseError, `${name}: is a CandidateParseError`);
      t.equal((err as CandidateParseError).field, field, `${name}: field`);
    }
  }
});

// Changed on purpose: the serializer emits what the parser now accepts, and nothing else.
t.test('changed: extension tokens and a lone raddr or rport serialize, and parse back', async (t) => {
  const cases: Array<[string, Partial<Candidate>, string]> = [
    ['extension transport', { transport: 'sctp' }, 'candidate:1 1 sctp 100 1.2.3.4 5 typ host'],
    ['unknown type token', { type: 'local' }, 'candidate:1 1 udp 100 1.2.3.4 5 typ local'],
    ['relatedAddress without relatedPort', { type: 'srflx', relatedAddress: '1.1.1.1' }, 'candidate:1 1 udp 100 1.2.3.4 5 typ srflx raddr 1.1.1.1'],
    ['relatedPort without relatedAddress', { type: 'srflx', relatedPort: 5 }, 'candidate:1 1 udp 100 1.2.3.4 5 typ srflx rport 5'],
    ['relatedAddress in IPv6 upper case', { relatedAddress: '2001:DB8::1' }, 'candidate:1 1 udp 100 1.2.3.4 5 typ host raddr 2001:db8::1'],
  ];
  for (const [name, patch, line] of cases) {
    const c = { ...good, ...patch };
    t.equal(serializeCandidate(c), line, `${name}: serialized`);
    const back = parseCandidate(line);
    t.strictSame(back, { ...c, ...(c.relatedAddress ? { relatedAddress: c.relatedAddress.toLowerCase() } : {}) }, `${name}: parses back`);
  }
});
