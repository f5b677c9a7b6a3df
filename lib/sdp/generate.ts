/**
 * Writes an IceDescription as SDP (RFC 8866) with the ICE attributes of
 * RFC 8839 and RFC 8840. Every field is checked first against the rules the
 * parser applies, so that the output always parses back to the same
 * description; a field that cannot be written throws an InvalidArgumentError
 * naming it (a bad candidate, a CandidateParseError).
 */
import { randomBytes } from 'node:crypto';
import type { Candidate } from '../core/candidate.js';
import { serializeCandidate } from '../core/candidate-attribute.js';
import { InvalidArgumentError } from '../errors.js';
import {
  KNOWN_ATTRIBUTES, LineOrder, addrTypeOf, addressProblem, impliedComponents, isByteString, isIceOption, isPort, isToken,
  pwdProblem, ufragProblem, verbatimProblem,
} from './grammar.js';
import type { IceDescription, IceStream, SdpAddress, SdpSession } from './types.js';

export interface GenerateOptions {
  /**
   * Write what libnice's `nice_agent_parse_remote_sdp` reads: no session
   * header (`v=`, `o=`, `s=`, `t=`; `desc.session` is left out), `m=` lines
   * may have no formats, and LF line endings (libnice splits lines at LF
   * and would keep the CR in every value).
   */
  partial?: boolean;
}

/** Where a peer that does not do ICE sends when there is no candidate yet: RFC 8840 (trickle ICE), the discard port. */
const NO_DESTINATION: SdpAddress = { address: '0.0.0.0', port: 9 };

/** Candidate types in the order RFC 8445 §5.1.4 recommends for the default candidate. */
const DEFAULT_ORDER: readonly string[] = ['relay', 'srflx', 'prflx', 'host'];

function fail(field: string, message: string): never {
  throw new InvalidArgumentError(field, message);
}

/**
 * The default candidate of a component (RFC 8445 §5.1.4, RFC 8839
 * §4.2.1.2): a relayed one if any, else server-reflexive, else host, the
 * highest priority first; UDP only, since a peer without ICE cannot reach a
 * TCP candidate of RFC 6544.
 */
export function defaultCandidate(candidates: readonly Candidate[], component: number): Candidate | undefined {
  let best: Candidate | undefined;
  let bestRank = Infinity;
  for (const c of candidates) {
    const rank = DEFAULT_ORDER.indexOf(c.type);
    if (c.component !== component || c.transport !== 'udp' || rank < 0) continue;
    if (rank < bestRank || (rank === bestRank && c.priority > best!.priority)) {
      best = c;
      bestRank = rank;
    }
  }
  return best;
}

/** The session header when the description has none: JSEP's (RFC 8829 §5.2.1) random 63-bit session id, and no address. */
function defaultSession(): SdpSession {
  const id = randomBytes(8);
  id[0]! &= 0x7f;
  return {
    origin: { username: '-', sessionId: id.readBigUInt64BE().toString(), sessionVersion: '0', netType: 'IN', addrType: 'IP4', address: '0.0.0.0' },
    name: '-',
    timing: ['t=0 0'],
    lines: [],
  };
}

/** Lines kept verbatim must be of the allowed types, valid, and in RFC 8866 order, or the parser would read them otherwise. */
function verbatim(lines: unknown, types: string, order: LineOrder, field: string): string[] {
  if (!Array.isArray(lines)) fail(field, 'must be an array of lines');
  return lines.map((l: unknown, i) => {
    if (typeof l !== 'string' || l.length < 2 || l[1] !== '=' || !types.includes(l[0]!)) fail(`${field}[${i}]`, `must be a "${[...types].join('=", "')}=" line`);
    const problem = order.next(l[0]!) ?? verbatimProblem(l[0]!, l.slice(2));
    if (problem) fail(`${field}[${i}]`, problem);
    return l;
  });
}

/** Uninterpreted attributes: `<token>[:<value>]`, and none the parser would interpret. */
function attributes(list: unknown, field: string): string[] {
  if (!Array.isArray(list)) fail(field, 'must be an array of attributes');
  return list.map((a: unknown, i) => {
    if (typeof a !== 'string' || /[\0\r\n]/.test(a)) fail(`${field}[${i}]`, 'must be a string without NUL, CR or LF');
    const colon = a.indexOf(':');
    const name = colon < 0 ? a : a.slice(0, colon);
    if (!isToken(name)) fail(`${field}[${i}]`, `"${name}" is not an attribute name (RFC 8866 §5.13)`);
    if (KNOWN_ATTRIBUTES.has(name)) fail(`${field}[${i}]`, `"a=${name}" is an ICE attribute: give it in its own field`);
    return `a=${a}`;
  });
}

function options(list: unknown, field: string): string[] {
  if (!Array.isArray(list) || !list.every(isIceOption)) fail(field, 'must be an array of ice-option-tags (1*ice-char, RFC 8839 §5.6)');
  return list.length > 0 ? [`a=ice-options:${list.join(' ')}`] : [];
}

function credential(name: 'ufrag' | 'pwd', value: unknown, field: string): string {
  const problem = name === 'ufrag' ? ufragProblem(value) : pwdProblem(value);
  if (problem) fail(field, problem);
  return `a=ice-${name}:${value as string}`;
}

function address(a: SdpAddress, field: string): SdpAddress {
  if (typeof a !== 'object' || a === null || !isPort(a.port)) fail(`${field}.port`, 'must be an integer 0..65535');
  const problem = typeof a.address === 'string' ? addressProblem(addrTypeOf(a.address), a.address) : 'must be a string';
  if (problem) fail(`${field}.address`, problem);
  return a;
}

function header(session: SdpSession): string[] {
  if (typeof session !== 'object' || session === null) fail('session', 'must be an object');
  const o = session.origin;
  if (typeof o !== 'object' || o === null) fail('session.origin', 'must be an object');
  for (const k of ['username', 'address'] as const) {
    if (typeof o[k] !== 'string' || !/^[^\s]+$/.test(o[k]) || !isByteString(o[k])) fail(`session.origin.${k}`, 'must be a non-empty string without blanks');
  }
  for (const k of ['sessionId', 'sessionVersion'] as const) if (typeof o[k] !== 'string' || !/^\d+$/.test(o[k])) fail(`session.origin.${k}`, 'must be a string of digits');
  for (const k of ['netType', 'addrType'] as const) if (!isToken(o[k])) fail(`session.origin.${k}`, 'must be a token');
  if (!isByteString(session.name)) fail('session.name', 'must be a non-empty string without NUL, CR or LF ("-" for none)');
  const lines = verbatim(session.lines, 'iuepbk', new LineOrder('session'), 'session.lines');
  if (!Array.isArray(session.timing) || typeof session.timing[0] !== 'string' || !session.timing[0].startsWith('t=')) {
    fail('session.timing', 'must start with a "t=" line (RFC 8866 §5.9)');
  }
  const timing = verbatim(session.timing, 'trz', new LineOrder('session'), 'session.timing');
  // RFC 8866 §5: i= u= e= p= b= before the time description, k= after it.
  const after = lines.filter((l) => l[0] === 'k');
  return [
    'v=0',
    `o=${o.username} ${o.sessionId} ${o.sessionVersion} ${o.netType} ${o.addrType} ${o.address}`,
    `s=${session.name}`,
    ...lines.filter((l) => l[0] !== 'k'),
    ...timing,
    ...after,
  ];
}

function section(s: IceStream, k: number, desc: IceDescription, mids: Set<string>, partial: boolean): string[] {
  const f = `streams[${k}]`;
  if (typeof s !== 'object' || s === null) fail(f, 'must be an object');
  if (!isToken(s.media)) fail(`${f}.media`, 'must be a token');
  if (typeof s.protocol !== 'string' || !s.protocol.split('/').every(isToken)) fail(`${f}.protocol`, 'must be tokens separated by "/"');
  if (!Array.isArray(s.formats) || !s.formats.every(isToken)) fail(`${f}.formats`, 'must be an array of tokens');
  if (s.formats.length === 0 && !partial) fail(`${f}.formats`, 'an m= line needs a format (RFC 8866 §5.14)');
  if (s.portCount !== undefined && (!isPort(s.portCount) || s.portCount < 1)) fail(`${f}.portCount`, 'must be an integer 1..65535');
  if (!Array.isArray(s.candidates)) fail(`${f}.candidates`, 'must be an array');
  const candidates = s.candidates.map((c: unknown, i) => {
    if (typeof c !== 'object' || c === null) fail(`${f}.candidates[${i}]`, 'must be a candidate');
    return serializeCandidate(c as Candidate, { prefix: true });
  });
  if (!Number.isInteger(s.components) || s.components < 1 || s.components > 256) fail(`${f}.components`, 'must be an integer 1..256');
  if (typeof s.endOfCandidates !== 'boolean' || typeof s.iceMismatch !== 'boolean') fail(f, 'endOfCandidates and iceMismatch must be booleans');

  // RFC 8839 §4.2.1.2: c= and m= carry the default destination of component 1.
  const dest = address(s.defaultAddress ?? toAddress(defaultCandidate(s.candidates, 1)) ?? NO_DESTINATION, `${f}.defaultAddress`);
  const port = s.portCount === undefined ? `${dest.port}` : `${dest.port}/${s.portCount}`;
  const out = [[`m=${s.media}`, port, s.protocol, ...s.formats].join(' ')];
  const order = new LineOrder('media');
  order.next('m');
  const lines = verbatim(s.lines, 'ibk', order, `${f}.lines`);
  out.push(...lines.filter((l) => l[0] === 'i'), `c=IN ${addrTypeOf(dest.address)} ${dest.address}`, ...lines.filter((l) => l[0] !== 'i'));

  if (s.mid !== undefined) {
    if (!isToken(s.mid)) fail(`${f}.mid`, 'must be a token (RFC 5888)');
    if (mids.has(s.mid)) fail(`${f}.mid`, `"${s.mid}" is the mid of another stream (RFC 5888)`);
    mids.add(s.mid);
    out.push(`a=mid:${s.mid}`);
  }
  // Media-level credentials only where they differ from the session's (RFC 8839 §5.4).
  if ((s.ufrag === undefined) !== (s.pwd === undefined)) fail(`${f}.${s.ufrag === undefined ? 'ufrag' : 'pwd'}`, 'a stream needs both ufrag and pwd, or neither (RFC 8839 §5.4)');
  for (const name of ['ufrag', 'pwd'] as const) {
    if (s[name] === desc[name]) continue;
    if (s[name] === undefined) fail(`${f}.${name}`, `absent, but the session-level ${name} applies to every stream`);
    out.push(credential(name, s[name], `${f}.${name}`));
  }
  out.push(...options(s.options, `${f}.options`));
  if (s.iceMismatch) out.push('a=ice-mismatch');
  if (s.rtcp !== undefined) {
    const r = s.rtcp;
    if (typeof r !== 'object' || r === null || !isPort(r.port)) fail(`${f}.rtcp.port`, 'must be an integer 0..65535');
    if (r.address === undefined) out.push(`a=rtcp:${r.port}`);
    else out.push(`a=rtcp:${r.port} IN ${addrTypeOf(address({ address: r.address, port: r.port }, `${f}.rtcp`).address)} ${r.address}`);
  }
  // RFC 8839 §4.2.2: one component is written as a=rtcp-mux where the section would otherwise say more.
  const plain = impliedComponents(false, s.protocol, s.rtcp !== undefined, s.candidates.map((c) => c.component));
  if (s.components !== plain) {
    if (s.components !== 1) fail(`${f}.components`, `${s.components} cannot be expressed: this m= section says ${plain} (protocol, a=rtcp, candidate components)`);
    out.push('a=rtcp-mux');
  }
  out.push(...candidates);
  if (s.endOfCandidates) out.push('a=end-of-candidates');
  out.push(...attributes(s.attributes, `${f}.attributes`));
  return out;
}

function toAddress(c: Candidate | undefined): SdpAddress | undefined {
  return c && { address: c.address, port: c.port };
}

/**
 * The SDP text of a description, CRLF line endings (RFC 8866 §5). Without
 * `desc.session`, a fresh header (`o=- <random> 0 IN IP4 0.0.0.0`, `s=-`,
 * `t=0 0`). A stream without `defaultAddress` gets its default candidate's
 * address, or `0.0.0.0` port 9 when it has none yet (RFC 8840).
 */
export function generateSdp(desc: IceDescription, opts: GenerateOptions = {}): string {
  if (typeof desc !== 'object' || desc === null) fail('desc', 'must be an IceDescription');
  if (!Array.isArray(desc.streams)) fail('streams', 'must be an array');
  if (typeof desc.iceLite !== 'boolean') fail('iceLite', 'must be a boolean');
  const out = opts.partial === true ? [] : header(desc.session ?? defaultSession());
  if (desc.iceLite) out.push('a=ice-lite');
  if (desc.ufrag !== undefined) out.push(credential('ufrag', desc.ufrag, 'ufrag'));
  if (desc.pwd !== undefined) out.push(credential('pwd', desc.pwd, 'pwd'));
  out.push(...options(desc.options, 'options'), ...attributes(desc.attributes, 'attributes'));
  const mids = new Set<string>();
  desc.streams.forEach((s, k) => out.push(...section(s, k, desc, mids, opts.partial === true)));
  const eol = opts.partial === true ? '\n' : '\r\n';
  return out.map((l) => `${l}${eol}`).join('');
}
