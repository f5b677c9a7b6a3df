/** STUN/TURN server URIs, RFC 7064 and RFC 7065. */
import t from 'tap';
import { parseIceServerUrl } from '../lib/turn/url.js';
import { InvalidArgumentError } from '../lib/errors.js';

t.test('valid URIs', async (t) => {
  const cases: Array<[string, ReturnType<typeof parseIceServerUrl>]> = [
    ['stun:stun.example.org', { scheme: 'stun', host: 'stun.example.org', port: 3478, transport: 'udp', secure: false }],
    ['stun:192.0.2.1:19302', { scheme: 'stun', host: '192.0.2.1', port: 19302, transport: 'udp', secure: false }],
    ['stuns:stun.example.org', { scheme: 'stuns', host: 'stun.example.org', port: 5349, transport: 'tcp', secure: true }],
    ['turn:turn.example.org', { scheme: 'turn', host: 'turn.example.org', port: 3478, transport: 'udp', secure: false }],
    ['turn:127.0.0.1:3479?transport=udp', { scheme: 'turn', host: '127.0.0.1', port: 3479, transport: 'udp', secure: false }],
    ['turn:127.0.0.1?transport=tcp', { scheme: 'turn', host: '127.0.0.1', port: 3478, transport: 'tcp', secure: false }],
    ['turns:turn.example.org', { scheme: 'turns', host: 'turn.example.org', port: 5349, transport: 'tcp', secure: true }],
    ['turns:turn.example.org:443?transport=tcp', { scheme: 'turns', host: 'turn.example.org', port: 443, transport: 'tcp', secure: true }],
    ['turn:[2001:db8::1]', { scheme: 'turn', host: '2001:db8::1', port: 3478, transport: 'udp', secure: false }],
    ['turn:[::1]:4000?transport=tcp', { scheme: 'turn', host: '::1', port: 4000, transport: 'tcp', secure: false }],
    ['stun:[::ffff:192.0.2.1]:1', { scheme: 'stun', host: '::ffff:192.0.2.1', port: 1, transport: 'udp', secure: false }],
    // Scheme and transport value are case-insensitive; the host is kept as written.
    ['TURN:Turn.Example.org:65535?transport=TCP', { scheme: 'turn', host: 'Turn.Example.org', port: 65535, transport: 'tcp', secure: false }],
    ['turn:localhost', { scheme: 'turn', host: 'localhost', port: 3478, transport: 'udp', secure: false }],
    ['turn:my_turn-1.example.', { scheme: 'turn', host: 'my_turn-1.example.', port: 3478, transport: 'udp', secure: false }],
  ];
  for (const [url, want] of cases) t.same(parseIceServerUrl(url), want, url);
});

t.test('invalid URIs name what is wrong', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /missing scheme/],
    ['turn.example.org', /missing scheme/],
    ['http://turn.example.org', /unsupported scheme "http"/],
    ['turn://turn.example.org', /no "\/\/"/],
    ['turn:', /missing host/],
    ['turn::3478', /missing host/],
    ['turn:host:', /invalid port ""/],
    ['turn:host:0', /out of range/],
    ['turn:host:65536', /out of range/],
    ['turn:host:12a', /invalid port "12a"/],
    ['turn:host:-1', /invalid port "-1"/],
    ['turn:host:123456', /invalid port/],
    ['turn:2001:db8::1', /must be written in brackets/],
    ['turn:[2001:db8::1', /unterminated "\["/],
    ['turn:[not-v6]:3478', /is not an IPv6 address/],
    ['turn:[::1]x', /unexpected "x"/],
    ['turn:[::1]:', /invalid port ""/],
    ['turn:host?transport=sctp', /unsupported transport "sctp"/],
    ['turn:host?transport=', /unsupported transport ""/],
    ['turn:host?foo=bar', /unsupported query/],
    ['turns:host?transport=udp', /DTLS, which is not supported/],
    ['stun:host?transport=udp', /takes no query/],
    ['stuns:host?transport=tcp', /takes no query/],
    ['turn:user@host', /user-info/],
    ['turn:user:pass@host', /user-info/],
    ['turn:host#frag', /fragment/],
    ['turn:ho st', /invalid host "ho st"/],
    ['turn:-host', /invalid host/],
    ['turn:host..example', /invalid host/],
    ['turn:999.1.1.1', /invalid IPv4 address/],
    ['turn:1.2.3', /invalid IPv4 address/],
  ];
  for (const [url, re] of cases) {
    t.throws(() => parseIceServerUrl(url), InvalidArgumentError, url);
    try {
      parseIceServerUrl(url);
    } catch (err) {
      const e = err as InvalidArgumentError;
      t.equal(e.argument, 'url', `${url}: names the argument`);
      t.equal(e.code, 'ERR_ICE_INVALID_ARGUMENT');
      t.match(e.message, re, `${url}: ${e.message}`);
      t.ok(e.message.includes(JSON.stringify(url)), 'quotes the input');
    }
  }
  t.throws(() => parseIceServerUrl(42 as unknown as string), InvalidArgumentError, 'not a string');
});
