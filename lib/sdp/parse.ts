/**
 * A strict SDP parser (RFC 8866) for the ICE attributes of RFC 8839 and
 * RFC 8840: every line is checked against the grammar, and the first one
 * that is wrong throws an SdpParseError naming its line number and field.
 * Attributes it does not interpret are kept verbatim, never refused.
 */
import type { Candidate } from '../core/candidate.js';
import { parseCandidate } from '../core/candidate-attribute.js';
import { CandidateParseError } from '../errors.js';
import { SdpParseError } from './error.js';
import {
  LineOrder, addressProblem, impliedComponents, isByteString, isIceOption, isToken, pwdProblem, ufragProblem, verbatimProblem,
} from './grammar.js';
import type { IceDescription, IceStream, SdpAddress, SdpOrigin, SdpSession } from './types.js';

export interface ParseOptions {
  /**
   * Also accept what libnice's `nice_agent_generate_local_sdp` writes: no
   * session header (`v=`, `o=`, `s=`, `t=`) and `m=` lines without formats.
   */
  partial?: boolean;
}

interface Line {
  n: number;
  type: string;
  value: string;
}

/** One `m=` section while its lines are read. */
interface Section {
  line: number;
  media: string;
  port: number;
  portCount?: number;
  protocol: string;
  formats: string[];
  connection?: string;
  mid?: string;
  ufrag?: string;
  pwd?: string;
  options: string[];
  candidates: Candidate[];
  endOfCandidates: boolean;
  iceMismatch: boolean;
  rtcpMux: boolean;
  rtcp?: { port: number; address?: string };
  attributes: string[];
  lines: string[];
}

/** A short, printable excerpt of what was found, for messages. */
function excerpt(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s);
}

/** CRLF line endings (RFC 8866 §5), LF accepted; the final line break may be missing. */
function splitLines(text: string): Line[] {
  const raw = text.split('\n');
  if (raw[raw.length - 1] === '') raw.pop();
  return raw.map((l, i) => {
    const line = l.endsWith('\r') ? l.slice(0, -1) : l;
    // RFC 8866 §5: <type>=<value>, one lower-case letter, no blank around "=".
    const m = /^([a-z])=(.*)$/s.exec(line);
    if (!m) throw new SdpParseError(i + 1, 'line', line === '' ? 'empty line' : `${excerpt(line)} is not <type>=<value> (RFC 8866 §5)`);
    if (/[\0\r]/.test(m[2]!)) throw new SdpParseError(i + 1, m[1]!, 'holds a NUL or a lone CR');
    return { n: i + 1, type: m[1]!, value: m[2]! };
  });
}

/** `a=<name>[:<value>]` (RFC 8866 §5.13): attribute names are tokens. */
function splitAttribute(l: Line): { name: string; value: string | undefined } {
  const colon = l.value.indexOf(':');
  const name = colon < 0 ? l.value : l.value.slice(0, colon);
  if (!isToken(name)) throw new SdpParseError(l.n, 'a', `${excerpt(name)} is not an attribute name (RFC 8866 §5.13)`);
  return { name, value: colon < 0 ? undefined : l.value.slice(colon + 1) };
}

function flag(l: Line, name: string, value: string | undefined): true {
  if (value !== undefined) throw new SdpParseError(l.n, name, `"a=${name}" takes no value`);
  return true;
}

function valued(l: Line, name: string, value: string | undefined): string {
  if (value === undefined || value === '') throw new SdpParseError(l.n, name, `"a=${name}" needs a value`);
  return value;
}

function credential(l: Line, name: 'ice-ufrag' | 'ice-pwd', value: string | undefined, current: string | undefined): string {
  if (current !== undefined) throw new SdpParseError(l.n, name, `"a=${name}" given twice at this level`);
  const v = valued(l, name, value);
  const problem = name === 'ice-ufrag' ? ufragProblem(v) : pwdProblem(v);
  if (problem) throw new SdpParseError(l.n, name, problem);
  return v;
}

/** ice-options = "ice-options:" ice-option-tag *(SP ice-option-tag) (RFC 8839 §5.6). */
function iceOptions(l: Line, value: string | undefined): string[] {
  const tags = valued(l, 'ice-options', value).split(' ');
  const bad = tags.find((t) => !isIceOption(t));
  if (bad !== undefined) throw new SdpParseError(l.n, 'ice-options', `${excerpt(bad)} is not an ice-option-tag (1*ice-char, RFC 8839 §5.6)`);
  return tags;
}

/** `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>` (RFC 8866 §5.2). */
function origin(l: Line): SdpOrigin {
  const f = l.value.split(' ');
  const [username, sessionId, sessionVersion, netType, addrType, address] = f;
  if (f.length !== 6 || f.some((x) => x === '' || /\s/.test(x))) {
    throw new SdpParseError(l.n, 'o', 'must be 6 fields: <username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>');
  }
  if (!/^\d+$/.test(sessionId!) || !/^\d+$/.test(sessionVersion!)) throw new SdpParseError(l.n, 'o', '<sess-id> and <sess-version> must be digits');
  if (!isToken(netType) || !isToken(addrType)) throw new SdpParseError(l.n, 'o', '<nettype> and <addrtype> must be tokens');
  return { username: username!, sessionId: sessionId!, sessionVersion: sessionVersion!, netType, addrType, address: address! };
}

/** `c=IN <addrtype> <connection-address>` (RFC 8866 §5.7), unicast only. */
function connection(l: Line): string {
  const m = /^IN (\S+) (\S+)$/.exec(l.value);
  if (!m) throw new SdpParseError(l.n, 'c', 'must be "IN <addrtype> <connection-address>" (RFC 8866 §5.7)');
  const problem = addressProblem(m[1]!, m[2]!);
  if (problem) throw new SdpParseError(l.n, 'c', problem);
  return m[2]!;
}

/** `a=rtcp:<port> [IN <addrtype> <connection-address>]` (RFC 3605 §2.1). */
function rtcp(l: Line, value: string | undefined): { port: number; address?: string } {
  const m = /^(\d{1,5})(?: IN (\S+) (\S+))?$/.exec(valued(l, 'rtcp', value));
  if (!m || Number(m[1]) > 65535) throw new SdpParseError(l.n, 'rtcp', 'must be "<port> [IN <addrtype> <connection-address>]" (RFC 3605)');
  if (m[2] === undefined) return { port: Number(m[1]) };
  const problem = addressProblem(m[2], m[3]!);
  if (problem) throw new SdpParseError(l.n, 'rtcp', problem);
  return { port: Number(m[1]), address: m[3]! };
}

/** `m=<media> <port>[/<number of ports>] <proto> <fmt> ...` (RFC 8866 §5.14). */
function mediaLine(l: Line, partial: boolean): Section {
  const [media, port, protocol, ...formats] = l.value.split(' ');
  if (!isToken(media)) throw new SdpParseError(l.n, 'm', 'the media type must be a token');
  const p = /^(\d{1,5})(?:\/(\d{1,5}))?$/.exec(port ?? '');
  if (!p || Number(p[1]) > 65535 || (p[2] !== undefined && Number(p[2]) < 1)) throw new SdpParseError(l.n, 'm', 'the port must be 0..65535, optionally with "/<number of ports>"');
  if (protocol === undefined || !protocol.split('/').every(isToken)) throw new SdpParseError(l.n, 'm', 'the protocol must be tokens separated by "/"');
  if (formats.length === 0 && !partial) throw new SdpParseError(l.n, 'm', 'no format after the protocol');
  if (!formats.every(isToken)) throw new SdpParseError(l.n, 'm', 'the formats must be tokens separated by single spaces');
  const s: Section = {
    line: l.n, media, port: Number(p[1]), protocol, formats,
    options: [], candidates: [], endOfCandidates: false, iceMismatch: false, rtcpMux: false, attributes: [], lines: [],
  };
  if (p[2] !== undefined) s.portCount = Number(p[2]);
  return s;
}

/**
 * Parses an SDP. Media-level `a=ice-ufrag`/`a=ice-pwd` override the
 * session-level ones (RFC 8839 §5.4); a session-level `a=end-of-candidates`
 * applies to every stream (RFC 8840). Throws SdpParseError on the first
 * line that breaks RFC 8866 or RFC 8839.
 */
export function parseSdp(text: string, opts: ParseOptions = {}): IceDescription {
  if (typeof text !== 'string') throw new SdpParseError(0, 'sdp', 'not a string');
  const partial = opts.partial === true;
  const lines = splitLines(text);
  const desc: IceDescription = { iceLite: false, options: [], attributes: [], streams: [] };
  // libnice describes an agent without streams as nothing at all.
  if (lines.length === 0) {
    if (partial) return desc;
    throw new SdpParseError(0, 'sdp', 'empty');
  }
  const header = lines[0]!.type === 'v';
  if (!header && !partial) throw new SdpParseError(1, 'v', 'an SDP starts with "v=0" (RFC 8866 §5.1)');
  if (header) {
    if (lines[0]!.value !== '0') throw new SdpParseError(1, 'v', 'the version must be 0 (RFC 8866 §5.1)');
    if (lines[1]?.type !== 'o') throw new SdpParseError(2, 'o', 'the second line must be "o=" (RFC 8866 §5.2)');
    if (lines[2]?.type !== 's') throw new SdpParseError(3, 's', 'the third line must be "s=" (RFC 8866 §5.3)');
  }

  let i = 0;
  const order = new LineOrder('session');
  const timing: string[] = [];
  const sessionLines: string[] = [];
  let sessionOrigin: SdpOrigin | undefined;
  let sessionName = '';
  let sessionConnection: string | undefined;
  let sessionEnd = false;
  for (; i < lines.length && lines[i]!.type !== 'm'; i++) {
    const l = lines[i]!;
    const problem = order.next(l.type);
    if (problem) throw new SdpParseError(l.n, l.type, problem);
    if (!header && l.type !== 'c' && l.type !== 'a') throw new SdpParseError(l.n, l.type, `"${l.type}=" needs the session header ("v=0" first)`);
    switch (l.type) {
      case 'v': break;
      case 'o': sessionOrigin = origin(l); break;
      case 's':
        if (!isByteString(l.value)) throw new SdpParseError(l.n, 's', 'the session name must not be empty ("s=-" for none, RFC 8866 §5.3)');
        sessionName = l.value;
        break;
      case 'c': sessionConnection = connection(l); break;
      case 'a': {
        const { name, value } = splitAttribute(l);
        switch (name) {
          case 'ice-lite': desc.iceLite = flag(l, name, value); break;
          case 'ice-ufrag': desc.ufrag = credential(l, name, value, desc.ufrag); break;
          case 'ice-pwd': desc.pwd = credential(l, name, value, desc.pwd); break;
          case 'ice-options': desc.options.push(...iceOptions(l, value)); break;
          case 'end-of-candidates': sessionEnd = flag(l, name, value); break;
          case 'candidate': case 'ice-mismatch': case 'mid': case 'rtcp': case 'rtcp-mux':
            throw new SdpParseError(l.n, name, `"a=${name}" is a media-level attribute`);
          default: desc.attributes.push(l.value);
        }
        break;
      }
      default: {
        const bad = verbatimProblem(l.type, l.value);
        if (bad) throw new SdpParseError(l.n, l.type, bad);
        (l.type === 't' || l.type === 'r' || l.type === 'z' ? timing : sessionLines).push(`${l.type}=${l.value}`);
      }
    }
  }
  if (header) {
    if (!order.has('t')) throw new SdpParseError(lines[i]?.n ?? lines.length, 't', 'no "t=" line in the session header (RFC 8866 §5.9)');
    desc.session = { origin: sessionOrigin!, name: sessionName, timing, lines: sessionLines } satisfies SdpSession;
  }

  const mids = new Map<string, number>();
  while (i < lines.length) {
    const s = mediaLine(lines[i]!, partial);
    const media = new LineOrder('media');
    media.next('m');
    for (i++; i < lines.length && lines[i]!.type !== 'm'; i++) {
      const l = lines[i]!;
      const problem = media.next(l.type);
      if (problem) throw new SdpParseError(l.n, l.type, problem);
      if (l.type === 'c') s.connection = connection(l);
      else if (l.type === 'a') mediaAttribute(s, l, mids, desc.streams.length);
      else {
        const bad = verbatimProblem(l.type, l.value);
        if (bad) throw new SdpParseError(l.n, l.type, bad);
        s.lines.push(`${l.type}=${l.value}`);
      }
    }
    desc.streams.push(finish(s, desc, sessionConnection, sessionEnd));
  }
  return desc;
}

function mediaAttribute(s: Section, l: Line, mids: Map<string, number>, index: number): void {
  const { name, value } = splitAttribute(l);
  switch (name) {
    case 'ice-ufrag': s.ufrag = credential(l, name, value, s.ufrag); return;
    case 'ice-pwd': s.pwd = credential(l, name, value, s.pwd); return;
    case 'ice-options': s.options.push(...iceOptions(l, value)); return;
    case 'ice-mismatch': s.iceMismatch = flag(l, name, value); return;
    case 'end-of-candidates': s.endOfCandidates = flag(l, name, value); return;
    case 'rtcp-mux': s.rtcpMux = flag(l, name, value); return;
    case 'ice-lite': throw new SdpParseError(l.n, name, '"a=ice-lite" is a session-level attribute (RFC 8839 §5.3)');
    case 'rtcp':
      if (s.rtcp) throw new SdpParseError(l.n, name, '"a=rtcp" given twice');
      s.rtcp = rtcp(l, value);
      return;
    case 'mid': {
      // identification-tag = token (RFC 5888 §4); unique across the m= sections.
      if (s.mid !== undefined) throw new SdpParseError(l.n, name, '"a=mid" given twice');
      const mid = valued(l, name, value);
      if (!isToken(mid)) throw new SdpParseError(l.n, name, `${excerpt(mid)} is not a token (RFC 5888)`);
      if (mids.has(mid)) throw new SdpParseError(l.n, name, `"${mid}" is the mid of m= section ${mids.get(mid)} too (RFC 5888)`);
      mids.set(mid, index);
      s.mid = mid;
      return;
    }
    case 'candidate':
      try {
        s.candidates.push(parseCandidate(`candidate:${valued(l, name, value)}`));
      } catch (err) {
        if (!(err instanceof CandidateParseError)) throw err;
        throw new SdpParseError(l.n, name, err.message, { cause: err });
      }
      return;
    default: s.attributes.push(l.value);
  }
}

/** Resolves what a section inherits from the session level, and checks what only the whole section shows. */
function finish(s: Section, desc: IceDescription, sessionConnection: string | undefined, sessionEnd: boolean): IceStream {
  const address = s.connection ?? sessionConnection;
  if (address === undefined) throw new SdpParseError(s.line, 'c', 'no "c=" line in the media section or the session (RFC 8866 §5.7)');
  const ufrag = s.ufrag ?? desc.ufrag;
  const pwd = s.pwd ?? desc.pwd;
  if ((ufrag === undefined) !== (pwd === undefined)) {
    throw new SdpParseError(s.line, ufrag === undefined ? 'ice-ufrag' : 'ice-pwd', 'a stream needs both ice-ufrag and ice-pwd (RFC 8839 §5.4)');
  }
  const defaultAddress: SdpAddress = { address, port: s.port };
  const stream: IceStream = {
    media: s.media,
    protocol: s.protocol,
    formats: s.formats,
    options: s.options,
    candidates: s.candidates,
    endOfCandidates: s.endOfCandidates || sessionEnd,
    iceMismatch: s.iceMismatch,
    components: impliedComponents(s.rtcpMux, s.protocol, s.rtcp !== undefined, s.candidates.map((c) => c.component)),
    defaultAddress,
    attributes: s.attributes,
    lines: s.lines,
  };
  if (s.portCount !== undefined) stream.portCount = s.portCount;
  if (s.mid !== undefined) stream.mid = s.mid;
  if (ufrag !== undefined) stream.ufrag = ufrag;
  if (pwd !== undefined) stream.pwd = pwd;
  if (s.rtcp !== undefined) stream.rtcp = s.rtcp;
  return stream;
}
