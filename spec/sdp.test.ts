/**
 * The SDP helpers (lib/sdp): real SDPs from Chromium, Firefox, libnice and
 * pion round-trip; every malformed line throws an SdpParseError naming its
 * line and field; properties over arbitrary descriptions; an Agent's stream
 * described, generated, parsed and applied to another Agent connects; and
 * libnice reads what we write and we read what it writes.
 */
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import { CandidateParseError, InvalidArgumentError, type Candidate } from '../lib/index.js';
import {
  SdpParseError, applyDescription, defaultCandidate, describeAgent, describeStream, generateSdp, parseSdp, type IceDescription,
} from '../lib/sdp/index.js';
import { description } from './fixtures/sdp/arbitrary.js';
import { LOOPBACK, closeAll, deadPort, makePair, waitState } from './helpers.js';
import { Agent } from '../lib/index.js';

const DIR = new URL('./fixtures/sdp/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, DIR), 'utf8');
const FIXTURES = readdirSync(DIR).filter((f) => f.endsWith('.sdp'));
/** libnice writes media sections only, without formats. */
const partialOf = (name: string) => name.startsWith('libnice');
const SEED = 8445;

function throwsSdp(t: Test, fn: () => unknown, line: number, field: string, what: string): void {
  try {
    fn();
    t.fail(`${what}: no error`);
  } catch (err) {
    t.type(err, SdpParseError, `${what}: an SdpParseError`);
    t.match(err, { code: 'ERR_ICE_SDP_PARSE', line, field }, `${what}: line ${line}, field ${field}`);
  }
}

t.test('fixtures: parse → generate → parse is the identity, and unknown lines survive verbatim', async (t) => {
  t.ok(FIXTURES.length >= 12, 'the fixtures are there');
  for (const name of FIXTURES) {
    const partial = partialOf(name);
    const text = fixture(name);
    const desc = parseSdp(text, { partial });
    const again = generateSdp(desc, { partial });
    t.same(parseSdp(again, { partial }), desc, `${name}: same description`);
    t.equal(generateSdp(parseSdp(again, { partial }), { partial }), again, `${name}: the generated text is stable`);
    t.ok(partial ? !again.includes('\r') : again.endsWith('\r\n') && !/[^\r]\n/.test(again), `${name}: ${partial ? 'LF' : 'CRLF'} line endings`);
    const kept = text.split(/\r?\n/).filter((l) => l !== '' && !/^a=(ice-|candidate|end-of-candidates|rtcp-mux|rtcp:|mid:)/.test(l) && !/^[vocm]=/.test(l));
    const out = new Set(again.split(/\r?\n/));
    t.same(kept.filter((l) => !out.has(l)), [], `${name}: every other line is in the output verbatim`);
    t.same(parseSdp(text.replace(/\r\n/g, '\n'), { partial }), desc, `${name}: LF line endings parse the same`);
  }
});

t.test('fixtures: what each stack says', async (t) => {
  const chrome = parseSdp(fixture('chromium-156-offer-initial.sdp'));
  t.same(chrome.streams.map((s) => [s.media, s.mid, s.components, s.candidates.length]), [['audio', '0', 1, 0], ['video', '1', 1, 0], ['application', '2', 1, 0]]);
  t.same(chrome.streams[0]!.options, ['trickle'], 'Chromium: ice-options at media level');
  t.same(chrome.streams[0]!.defaultAddress, { address: '0.0.0.0', port: 9 }, 'trickle with no candidate: 0.0.0.0 port 9');
  t.same(chrome.streams[0]!.rtcp, { port: 9, address: '0.0.0.0' });
  t.ok(chrome.attributes.includes('msid-semantic: WMS'), 'an attribute value with a leading blank is kept');
  t.equal(chrome.session?.origin.sessionId.length, 19, 'a 63-bit session id stays a string');

  const cand = parseSdp(fixture('chromium-156-offer.sdp')).streams[0]!;
  t.match(cand.candidates[0], { type: 'host', transport: 'udp', address: '198.51.100.10', port: cand.defaultAddress!.port, extensions: [['generation', '0'], ['network-cost', '999']] });

  const ff = parseSdp(fixture('firefox-153-offer.sdp'));
  t.same(ff.options, ['trickle'], 'Firefox: ice-options at session level');
  t.same(ff.streams[0]!.options, []);
  const audio = ff.streams[0]!;
  t.equal(audio.components, 1, 'rtcp-mux makes one component although component-2 candidates are offered');
  t.same([...new Set(audio.candidates.map((c) => c.component))], [1, 2]);
  t.ok(audio.candidates.some((c) => c.transport === 'tcp' && c.tcpType === 'active' && c.port === 9), 'RFC 6544 active TCP candidates with port 9');
  t.ok(ff.streams.every((s) => s.endOfCandidates), 'end-of-candidates in every section');
  t.equal(audio.ufrag, '9a43b887');
  t.equal(ff.streams[1]!.ufrag, '9a43b887');

  const ffAnswer = parseSdp(fixture('firefox-153-answer.sdp'));
  t.same(ffAnswer.streams.map((s) => s.defaultAddress), Array(3).fill(ffAnswer.streams[0]!.defaultAddress), 'BUNDLE: every section on one port');

  const nice = parseSdp(fixture('libnice-0.1.21-full.sdp'), { partial: true });
  t.equal(nice.session, undefined, 'libnice: no session header');
  t.same(nice.streams.map((s) => [s.media, s.protocol, s.formats, s.components]), [['audio', 'ICE/SDP', [], 2], ['video', 'ICE/SDP', [], 1]]);
  t.same(nice.streams[0]!.rtcp, { port: 53879 }, 'a=rtcp with a port only');
  throwsSdp(t, () => parseSdp(fixture('libnice-0.1.21-full.sdp')), 1, 'v', 'libnice output is not a whole SDP');

  const pion = parseSdp(fixture('pion-3.1.56-offer.sdp'));
  t.equal(pion.streams[0]!.ufrag?.length, 16);
  t.equal(pion.streams[0]!.candidates.length, 4);
  t.ok(pion.streams[0]!.attributes.includes('rtcp-fb:111 transport-cc '), 'a trailing blank is kept');
});

const OK = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n';
const M = 'm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n';
const CREDS = 'a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n';

t.test('malformed lines: an SdpParseError with the line number and the field', async (t) => {
  const cases: Array<[string, string, number, string]> = [
    ['empty text', '', 0, 'sdp'],
    ['no v= first', 'o=- 1 1 IN IP4 0.0.0.0\r\n', 1, 'v'],
    ['version 1', OK.replace('v=0', 'v=1'), 1, 'v'],
    ['no o=', 'v=0\r\ns=-\r\nt=0 0\r\n', 2, 'o'],
    ['o= with 5 fields', OK.replace('o=- 1 1', 'o=- 1'), 2, 'o'],
    ['o= sess-id not digits', OK.replace('o=- 1 1', 'o=- x 1'), 2, 'o'],
    ['empty s=', OK.replace('s=-', 's='), 3, 's'],
    ['no t=', 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n' + M, 4, 't'],
    ['bad t=', OK.replace('t=0 0', 't=now'), 4, 't'],
    ['not type=value', OK + 'a candidate\r\n', 5, 'line'],
    ['blank around =', OK + 'a =x\r\n', 5, 'line'],
    ['empty line', OK + '\r\n' + M, 5, 'line'],
    ['unknown type letter', OK + 'x=1\r\n', 5, 'x'],
    ['upper-case type', OK + 'A=1\r\n', 5, 'line'],
    ['NUL', OK + 'a=foo\0\r\n', 5, 'a'],
    ['lone CR', OK + 'a=fo\ro\r\n', 5, 'a'],
    ['lines out of order', OK.replace('t=0 0\r\n', 't=0 0\r\ni=late\r\n'), 5, 'i'],
    ['c= twice', OK + 'm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\nc=IN IP4 0.0.0.0\r\n', 7, 'c'],
    ['bad attribute name', OK + 'a=ice ufrag:abcd\r\n', 5, 'a'],
    ['m= port 65536', OK + 'm=audio 65536 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n', 5, 'm'],
    ['m= without formats', OK + 'm=audio 9 RTP/AVP\r\nc=IN IP4 0.0.0.0\r\n', 5, 'm'],
    ['m= double blank', OK + 'm=audio 9  RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n', 5, 'm'],
    ['no c= anywhere', OK + 'm=audio 9 RTP/AVP 0\r\n', 5, 'c'],
    ['c= not IN', OK + 'm=audio 9 RTP/AVP 0\r\nc=ATM NSAP 0.0.0.0\r\n', 6, 'c'],
    ['c= multicast', OK + 'm=audio 9 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127\r\n', 6, 'c'],
    ['c= IPv6 with IP4', OK + 'm=audio 9 RTP/AVP 0\r\nc=IN IP4 ::1\r\n', 6, 'c'],
    ['c= bad IPv4', OK + 'm=audio 9 RTP/AVP 0\r\nc=IN IP4 1.2.3.256\r\n', 6, 'c'],
    ['ufrag of 3', OK + 'a=ice-ufrag:abc\r\n', 5, 'ice-ufrag'],
    ['ufrag of 257', OK + `a=ice-ufrag:${'a'.repeat(257)}\r\n`, 5, 'ice-ufrag'],
    ['ufrag with "-"', OK + 'a=ice-ufrag:ab-cd\r\n', 5, 'ice-ufrag'],
    ['pwd of 21', OK + `a=ice-pwd:${'a'.repeat(21)}\r\n`, 5, 'ice-pwd'],
    ['pwd of 257', OK + `a=ice-pwd:${'a'.repeat(257)}\r\n`, 5, 'ice-pwd'],
    ['ufrag twice', OK + M + 'a=ice-ufrag:abcd\r\na=ice-ufrag:abcd\r\n', 8, 'ice-ufrag'],
    ['ufrag without pwd', OK + M + 'a=ice-ufrag:abcd\r\n', 5, 'ice-pwd'],
    ['pwd without ufrag', OK + M + 'a=ice-pwd:abcdefghijklmnopqrstuv\r\n', 5, 'ice-ufrag'],
    ['bad ice-option', OK + 'a=ice-options:trickle tr_ickle\r\n', 5, 'ice-options'],
    ['empty ice-options', OK + 'a=ice-options:\r\n', 5, 'ice-options'],
    ['ice-lite at media level', OK + M + 'a=ice-lite\r\n', 7, 'ice-lite'],
    ['ice-lite with a value', OK + 'a=ice-lite:yes\r\n', 5, 'ice-lite'],
    ['candidate at session level', OK + 'a=candidate:1 1 udp 1 1.2.3.4 1 typ host\r\n', 5, 'candidate'],
    ['ice-mismatch at session level', OK + 'a=ice-mismatch\r\n', 5, 'ice-mismatch'],
    ['rtcp-mux with a value', OK + M + 'a=rtcp-mux:1\r\n', 7, 'rtcp-mux'],
    ['bad candidate port', OK + M + CREDS + 'a=candidate:1 1 udp 1 1.2.3.4 70000 typ host\r\n', 9, 'candidate'],
    ['candidate without typ', OK + M + 'a=candidate:1 1 udp 1 1.2.3.4 5\r\n', 7, 'candidate'],
    ['candidate without value', OK + M + 'a=candidate\r\n', 7, 'candidate'],
    ['mid twice in a section', OK + M + 'a=mid:a\r\na=mid:b\r\n', 8, 'mid'],
    ['same mid in two sections', OK + M + 'a=mid:a\r\n' + M + 'a=mid:a\r\n', 10, 'mid'],
    ['mid not a token', OK + M + 'a=mid:a b\r\n', 7, 'mid'],
    ['bad a=rtcp', OK + M + 'a=rtcp:9 IN IP4\r\n', 7, 'rtcp'],
    ['a=rtcp twice', OK + M + 'a=rtcp:9\r\na=rtcp:9\r\n', 8, 'rtcp'],
    ['bad b=', OK.replace('t=0 0', 'b=AS\r\nt=0 0'), 4, 'b'],
    ['t= at media level', OK + M + 't=0 0\r\n', 7, 't'],
  ];
  for (const [what, text, line, field] of cases) throwsSdp(t, () => parseSdp(text), line, field, what);
  throwsSdp(t, () => parseSdp(42 as unknown as string), 0, 'sdp', 'not a string');
  const inner = (() => { try { parseSdp(OK + M + 'a=candidate:1 1 udp 1 1.2.3.4 70000 typ host\r\n'); } catch (e) { return e; } })();
  t.type((inner as SdpParseError).cause, CandidateParseError, 'the cause names the candidate field');
  t.match((inner as SdpParseError).cause, { field: 'port' });
  throwsSdp(t, () => parseSdp('m=audio 9 ICE/SDP\r\na=ice-lite\r\n', { partial: true }), 2, 'ice-lite', 'partial: ice-lite in a section');
  throwsSdp(t, () => parseSdp('b=AS:1\r\nm=audio 9 ICE/SDP\r\nc=IN IP4 0.0.0.0\r\n', { partial: true }), 1, 'b', 'partial: b= without a session header');
});

t.test('levels: media-level credentials override, session-level end-of-candidates applies to all, unknown kept', async (t) => {
  const d = parseSdp(OK + 'a=ice-lite\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionsessionsession12\r\na=end-of-candidates\r\na=x-foo:bar baz\r\na=flag\r\n'
    + M + 'a=ice-ufrag:medi\r\na=x-media\r\n' + M + 'a=ice-pwd:mediamediamediamedia12\r\n' + 'm=video 0 RTP/AVP 31\nc=IN IP6 ::1\nb=AS:64\na=rtcp-mux\n');
  t.equal(d.iceLite, true);
  t.same(d.streams.map((s) => [s.ufrag, s.pwd]), [['medi', 'sessionsessionsession12'], ['sess', 'mediamediamediamedia12'], ['sess', 'sessionsessionsession12']]);
  t.ok(d.streams.every((s) => s.endOfCandidates));
  t.same(d.attributes, ['x-foo:bar baz', 'flag']);
  t.same(d.streams[0]!.attributes, ['x-media']);
  t.same(d.streams[2]!.lines, ['b=AS:64'], 'LF line endings, no final CRLF needed');
  t.same(d.streams[2]!.defaultAddress, { address: '::1', port: 0 });
  t.same(d.streams.map((s) => s.components), [2, 2, 1], 'RTP without rtcp-mux: RTP and RTCP; with it one');
  const text = generateSdp(d);
  t.match(text, /a=ice-ufrag:sess\r\n/, 'session-level credentials are written once at session level');
  t.equal(text.match(/a=ice-ufrag:/g)?.length, 2, 'and media-level ones only where they differ');
  t.match(text, /c=IN IP6 ::1\r\n/);
  t.same(parseSdp(text), d);
});

t.test('generateSdp: default destinations, header, and typed errors naming the field', async (t) => {
  const host: Candidate = { type: 'host', transport: 'udp', foundation: '1', component: 1, priority: 2130706431, address: '198.51.100.1', port: 1000 };
  const srflx: Candidate = { ...host, type: 'srflx', foundation: '2', priority: 1694498815, address: '203.0.113.1', port: 2000, relatedAddress: '198.51.100.1', relatedPort: 1000 };
  const relay: Candidate = { ...host, type: 'relay', foundation: '3', priority: 16777215, address: '198.51.100.1', port: 3000 };
  const tcp: Candidate = { ...host, transport: 'tcp', tcpType: 'passive', priority: 2130706432 };
  t.equal(defaultCandidate([host, srflx, relay], 1), relay, 'RFC 8445 §5.1.4: relayed first');
  t.equal(defaultCandidate([host, srflx], 1), srflx, 'then server-reflexive');
  t.equal(defaultCandidate([tcp, host], 1), host, 'then host, UDP only');
  t.equal(defaultCandidate([host], 2), undefined);
  const stream = { media: 'audio', protocol: 'RTP/AVP', formats: ['0'], ufrag: 'abcd', pwd: 'abcdefghijklmnopqrstuv', options: [], candidates: [host, srflx], endOfCandidates: false, iceMismatch: false, components: 1, attributes: [], lines: [] };
  const desc: IceDescription = { iceLite: false, options: ['trickle'], attributes: [], streams: [stream] };
  const text = generateSdp(desc);
  t.match(text, /^v=0\r\no=- \d+ 0 IN IP4 0\.0\.0\.0\r\ns=-\r\nt=0 0\r\na=ice-options:trickle\r\nm=audio 2000 RTP\/AVP 0\r\nc=IN IP4 203\.0\.113\.1\r\n/);
  t.match(text, /a=rtcp-mux\r\n/, 'one component of RTP: rtcp-mux');
  t.match(generateSdp({ ...desc, streams: [{ ...stream, candidates: [] }] }), /m=audio 9 RTP\/AVP 0\r\nc=IN IP4 0\.0\.0\.0\r\n/, 'no candidate yet: 0.0.0.0 port 9 (RFC 8840)');
  t.equal(parseSdp(text).streams[0]!.defaultAddress?.port, 2000);

  const bad: Array<[string, IceDescription, string]> = [
    ['short ufrag', { ...desc, streams: [{ ...stream, ufrag: 'abc' }] }, 'streams[0].ufrag'],
    ['pwd without ufrag', { ...desc, streams: [{ ...stream, ufrag: undefined }] }, 'streams[0].ufrag'],
    ['inherited ufrag missing', { ...desc, ufrag: 'sess', pwd: 'sessionsessionsession12', streams: [{ ...stream, ufrag: undefined, pwd: undefined }] }, 'streams[0].ufrag'],
    ['a known attribute among the others', { ...desc, streams: [{ ...stream, attributes: ['ice-ufrag:abcd'] }] }, 'streams[0].attributes[0]'],
    ['an attribute with CRLF', { ...desc, attributes: ['x:a\r\nm=audio'] }, 'attributes[0]'],
    ['two components of a non-RTP stream without a=rtcp', { ...desc, streams: [{ ...stream, protocol: 'UDP', components: 2 }] }, 'streams[0].components'],
    ['three components of RTP', { ...desc, streams: [{ ...stream, components: 3 }] }, 'streams[0].components'],
    ['no format', { ...desc, streams: [{ ...stream, formats: [] }] }, 'streams[0].formats'],
    ['duplicate mid', { ...desc, streams: [{ ...stream, mid: 'a' }, { ...stream, mid: 'a' }] }, 'streams[1].mid'],
    ['bad option', { ...desc, options: ['tr-ickle'] }, 'options'],
    ['lines out of order', { ...desc, streams: [{ ...stream, lines: ['b=AS:1', 'i=x'] }] }, 'streams[0].lines[1]'],
    ['a c= line among the lines', { ...desc, streams: [{ ...stream, lines: ['c=IN IP4 0.0.0.0'] }] }, 'streams[0].lines[0]'],
    ['multicast default address', { ...desc, streams: [{ ...stream, defaultAddress: { address: '224.0.0.1/1', port: 9 } }] }, 'streams[0].defaultAddress.address'],
    ['bad origin', { ...desc, session: { origin: { username: 'a b', sessionId: '1', sessionVersion: '1', netType: 'IN', addrType: 'IP4', address: 'x' }, name: '-', timing: ['t=0 0'], lines: [] } }, 'session.origin.username'],
    ['no t=', { ...desc, session: { origin: { username: '-', sessionId: '1', sessionVersion: '1', netType: 'IN', addrType: 'IP4', address: 'x' }, name: '-', timing: [], lines: [] } }, 'session.timing'],
    ['not a candidate', { ...desc, streams: [{ ...stream, candidates: [null as unknown as Candidate] }] }, 'streams[0].candidates[0]'],
  ];
  for (const [what, d, field] of bad) {
    t.throws(() => generateSdp(d), InvalidArgumentError, what);
    t.throws(() => generateSdp(d), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: field }, `${what}: names ${field}`);
  }
  t.throws(() => generateSdp({ ...desc, streams: [{ ...stream, candidates: [{ ...host, port: 70000 }] }] }), { name: 'CandidateParseError', field: 'port' }, 'a bad candidate: CandidateParseError');
  const partial = generateSdp({ ...desc, streams: [{ ...stream, formats: [] }] }, { partial: true });
  t.match(partial, /^a=ice-options:trickle\nm=audio 2000 RTP\/AVP\nc=/, 'partial: no header, no format, LF');
});

t.test('properties', async (t) => {
  const params = { numRuns: 300, seed: SEED };
  for (const partial of [false, true]) {
    t.doesNotThrow(() => fc.assert(fc.property(description(partial), (d) => isDeepStrictEqual(parseSdp(generateSdp(d, { partial }), { partial }), d)), params),
      `generate → parse is the identity on valid descriptions${partial ? ' (partial)' : ''}`);
  }
  t.doesNotThrow(() => fc.assert(fc.property(description(false), fc.constantFrom(...MUTATIONS.map((m) => m.name)), fc.nat(), (d, kind, n) => {
    const lines = generateSdp(d).split('\r\n').slice(0, -1);
    MUTATIONS.find((m) => m.name === kind)!.apply(lines, n, d);
    try {
      parseSdp(lines.join('\r\n') + '\r\n');
      return false;
    } catch (err) {
      return err instanceof SdpParseError;
    }
  }), { numRuns: 1000, seed: SEED }), 'a malformed mutation of a valid SDP always throws an SdpParseError');
  const NOISE = ['\r', '\n', '\r\n', '=', ':', ' ', '\0', '/', '.', 'a', 'm', 'c', '9', 'é', '\t', '-'];
  t.doesNotThrow(() => fc.assert(fc.property(description(false), fc.array(fc.tuple(fc.nat(), fc.nat(2), fc.constantFrom(...NOISE)), { minLength: 1, maxLength: 6 }), (d, edits) => {
    let text = generateSdp(d);
    for (const [at, op, ch] of edits) {
      const i = at % (text.length + 1);
      text = op === 0 ? text.slice(0, i) + ch + text.slice(i) : op === 1 ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + ch + text.slice(i + 1);
    }
    try {
      parseSdp(text);
      return true;
    } catch (err) {
      return err instanceof SdpParseError;
    }
  }), { numRuns: 2000, seed: SEED }), 'arbitrary edits either parse or throw an SdpParseError, never another error');
  t.doesNotThrow(() => fc.assert(fc.property(description(false), fc.nat(), fc.anything(), (d, n, junk) => {
    const streamFields = ['media', 'protocol', 'formats', 'portCount', 'mid', 'ufrag', 'pwd', 'options', 'endOfCandidates', 'iceMismatch', 'components', 'defaultAddress', 'rtcp', 'attributes', 'lines'];
    const descFields = ['iceLite', 'ufrag', 'pwd', 'options', 'attributes', 'streams', 'session'];
    const target: Record<string, unknown> = d.streams.length > 0 && n % 2 === 0 ? d.streams[n % d.streams.length]! as unknown as Record<string, unknown> : d as unknown as Record<string, unknown>;
    const fields = target === (d as unknown) ? descFields : streamFields;
    target[fields[n % fields.length]!] = junk;
    try {
      generateSdp(d);
      return true;
    } catch (err) {
      return err instanceof InvalidArgumentError;
    }
  }), { numRuns: 1000, seed: SEED }), 'a junk field makes generateSdp throw an InvalidArgumentError, never another error');
});

/** Edits that always make a valid SDP invalid. */
const MUTATIONS: Array<{ name: string; apply(lines: string[], n: number, d: IceDescription): void }> = [
  { name: 'blank after the type', apply: (l, n) => { const i = n % l.length; l[i] = `${l[i]![0]} ${l[i]!.slice(1)}`; } },
  { name: 'empty line', apply: (l, n) => l.splice(n % (l.length + 1), 0, '') },
  { name: 'unknown type', apply: (l, n) => l.splice(n % (l.length + 1), 0, 'x=1') },
  { name: 'version', apply: (l) => { l[0] = 'v=1'; } },
  { name: 'no origin', apply: (l) => l.splice(1, 1) },
  { name: 'no timing', apply: (l) => { for (let i = l.length - 1; i >= 0; i--) if (l[i]!.startsWith('t=')) l.splice(i, 1); } },
  { name: 'NUL', apply: (l, n) => { l[n % l.length] += '\0'; } },
  { name: 'lone CR', apply: (l, n) => { const i = n % l.length; l[i] = `${l[i]!.slice(0, 2)}\r${l[i]!.slice(2)}`; } },
  { name: 'short ufrag', apply: (l) => { const i = l.findIndex((x) => x.startsWith('a=ice-ufrag:')); if (i >= 0) l[i] = 'a=ice-ufrag:abc'; else l.push('a=ice-ufrag:abc'); } },
  { name: 'short pwd', apply: (l) => { const i = l.findIndex((x) => x.startsWith('a=ice-pwd:')); if (i >= 0) l[i] = `a=ice-pwd:${'p'.repeat(21)}`; else l.push(`a=ice-pwd:${'p'.repeat(21)}`); } },
  { name: 'bad option', apply: (l) => l.push('a=ice-options:tr-ickle') },
  { name: 'bad port', apply: (l) => { const i = l.findIndex((x) => x.startsWith('m=')); if (i >= 0) l[i] = l[i]!.replace(/^(m=\S+ )\d+/, '$165536'); else l.push('m=audio 65536 RTP/AVP 0'); } },
  { name: 'bad candidate', apply: (l) => l.push('a=candidate:1 1 udp 1 198.51.100.1 70000 typ host') },
  { name: 'flag with value', apply: (l) => l.push('a=rtcp-mux:1') },
  { name: 'mid at session level', apply: (l) => { const i = l.findIndex((x) => x.startsWith('m=')); l.splice(i < 0 ? l.length : i, 0, 'a=mid:x'); } },
  { name: 'attribute name with a blank', apply: (l) => l.push('a= candidate:1') },
  { name: 'lite in a section or twice a ufrag', apply: (l, _n, d) => l.push(d.streams.length > 0 ? 'a=ice-lite' : 'a=ice-ufrag:abcd', ...(d.streams.length > 0 ? [] : ['a=ice-ufrag:abcd'])) },
  { name: 'multicast c=', apply: (l) => { const i = l.findIndex((x) => x.startsWith('c=')); if (i >= 0) l[i] = 'c=IN IP4 224.2.1.1/127'; else l.push('m=audio 9 RTP/AVP 0', 'c=IN IP4 224.2.1.1/127'); } },
];

t.test('an Agent stream described, written, read and applied to another Agent connects', async (t) => {
  const p = await makePair({}, {}, 1, 2);
  t.teardown(() => closeAll(p.a, p.b));
  const [sa, sb] = [p.streamsA[0]!, p.streamsB[0]!];
  const offer = generateSdp(describeAgent(p.a, [{ streamId: sa, mid: '0', media: 'audio', protocol: 'RTP/AVP', formats: ['0'], endOfCandidates: true }]));
  const answer = generateSdp(describeAgent(p.b, [{ streamId: sb, mid: '0', endOfCandidates: true }]));
  const fromA = parseSdp(offer);
  const fromB = parseSdp(answer);
  t.equal(fromA.streams[0]!.components, 2, 'RTP without rtcp-mux: two components');
  t.notMatch(offer, /rtcp-mux/);
  t.equal(fromB.streams[0]!.components, 2, 'a non-RTP stream of two components says so with a=rtcp');
  const a1 = p.a.getLocalCandidates(sa, 1)[0]!;
  t.same(fromA.streams[0]!.defaultAddress, { address: a1.address, port: a1.port }, 'the default destination is the host candidate');
  t.same(fromA.streams[0]!.rtcp, { port: p.a.getLocalCandidates(sa, 2)[0]!.port, address: '127.0.0.1' });
  t.equal(applyDescription(p.b, sb, fromA, '0'), 2, 'both components of the offer added');
  t.equal(applyDescription(p.a, sa, fromB), 2);
  await Promise.all([1, 2].flatMap((c) => [waitState(p.a, sa, c, 'ready'), waitState(p.b, sb, c, 'ready')]));
  const after = describeStream(p.a, sa);
  t.same(after.defaultAddress, { address: p.a.getSelectedPair(sa, 1)!.local.address, port: p.a.getSelectedPair(sa, 1)!.local.port }, 'once selected, the selected local candidate');
  t.same(parseSdp(generateSdp(describeAgent(p.a, [{ streamId: sa }]))).streams[0]!.candidates, p.a.getLocalCandidates(sa, 1).concat(p.a.getLocalCandidates(sa, 2)).map(({ base, streamId, ...c }) => c), 'the candidates as the grammar carries them');
});

t.test('describeStream with trickle before gathering, and applyDescription refusals', async (t) => {
  const a = new Agent({ ...LOOPBACK, iceTrickle: true });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const text = generateSdp(describeAgent(a, [{ streamId: s, mid: 'data' }]));
  t.match(text, /m=application 9 UDP ice-agent\r\nc=IN IP4 0\.0\.0\.0\r\na=mid:data\r\na=ice-ufrag:\S+\r\na=ice-pwd:\S+\r\na=ice-options:trickle\r\n/);
  t.notMatch(text, /candidate|rtcp/);
  const desc = parseSdp(OK + M + CREDS + `a=candidate:1 1 udp 2130706431 127.0.0.1 ${await deadPort()} typ host\r\n`
    + `a=candidate:1 2 udp 2130706430 127.0.0.1 ${await deadPort()} typ host\r\na=rtcp-mux\r\na=end-of-candidates\r\n`);
  let done = 0;
  const orig = a.peerCandidateGatheringDone.bind(a);
  a.peerCandidateGatheringDone = (id: number) => { done++; orig(id); };
  t.equal(applyDescription(a, s, desc), 1, 'the component-2 candidate is unused with rtcp-mux');
  t.equal(done, 1, 'end-of-candidates → peerCandidateGatheringDone');
  t.same(a.getRemoteCredentials(s), { ufrag: 'abcd', pwd: 'abcdefghijklmnopqrstuv' });
  t.throws(() => applyDescription(a, s, desc, 1), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'section' });
  t.throws(() => applyDescription(a, s, desc, 'nope'), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'section' });
  t.throws(() => applyDescription(a, s, parseSdp(OK + M + CREDS + 'a=ice-mismatch\r\n')), { argument: 'desc', message: /ice-mismatch/ });
  t.throws(() => applyDescription(a, s, parseSdp(OK + M)), { argument: 'desc', message: /ice-ufrag/ });
  t.throws(() => applyDescription(a, s, parseSdp(OK.replace('t=0 0', 't=0 0\r\na=ice-lite') + M + CREDS)), { message: /ICE-lite/ }, 'a controlled full agent and a lite peer');
  t.throws(() => describeStream(a, 99), { name: 'UnknownStreamError' });
  const lite = new Agent({ ...LOOPBACK, iceLite: true });
  t.teardown(() => lite.close());
  t.match(generateSdp(describeAgent(lite, [{ streamId: lite.addStream(1) }])), /\r\nt=0 0\r\na=ice-lite\r\n/, 'a lite agent says a=ice-lite');
});

const PY = '/usr/bin/python3';
const hasLibnice = spawnSync(PY, ['-c', "import gi; gi.require_version('Nice', '0.1')"]).status === 0;

t.test('libnice reads what we write, and we read what it writes', { skip: hasLibnice ? false : 'no libnice GObject bindings' }, async (t) => {
  const a = new Agent({ ...LOOPBACK });
  t.teardown(() => a.close());
  const s = a.addStream(2);
  await a.gatherCandidates(s);
  const ours = generateSdp(describeAgent(a, [{ streamId: s }]), { partial: true });
  // libnice matches m= lines to streams by name; it gathers on loopback only and connects to nothing.
  const script = [
    'import sys, gi', "gi.require_version('Nice', '0.1')", 'from gi.repository import Nice, GLib',
    'ctx = GLib.MainContext.default()', 'agent = Nice.Agent.new(ctx, Nice.Compatibility.RFC5245)',
    "addr = Nice.Address.new(); addr.set_from_string('127.0.0.1'); agent.add_local_address(addr)",
    "s = agent.add_stream(2); agent.set_stream_name(s, 'application')",
    'done = []', "agent.connect('candidate-gathering-done', lambda a, i: done.append(i))", 'agent.gather_candidates(s)',
    'while not done: ctx.iteration(True)',
    'n = agent.parse_remote_sdp(sys.stdin.read())',
    "sys.stdout.write('%d %d %d\\n' % (n, len(agent.get_remote_candidates(s, 1)), len(agent.get_remote_candidates(s, 2))))",
    'sys.stdout.write(agent.generate_local_sdp())',
  ].join('\n');
  const r = spawnSync(PY, ['-c', script], { input: ours, encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, `libnice ran: ${r.stderr}`);
  const [counts, ...rest] = r.stdout.split('\n');
  t.equal(counts, '2 1 1', 'nice_agent_parse_remote_sdp took the candidate of each component');
  const theirs = parseSdp(rest.join('\n'), { partial: true });
  t.same(theirs.streams.map((x) => [x.media, x.components]), [['application', 2]]);
  t.ok(theirs.streams[0]!.candidates.some((c) => c.transport === 'udp' && c.address === '127.0.0.1' && c.component === 2));
  const b = new Agent({ ...LOOPBACK, controllingMode: false });
  t.teardown(() => b.close());
  const sb = b.addStream(2);
  t.ok(applyDescription(b, sb, theirs) >= 2, 'libnice\'s UDP candidates are added (its TCP ones are skipped)');
});
