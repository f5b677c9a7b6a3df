/**
 * The SDP `candidate-attribute`, RFC 8839 §5.1, with the RFC 6544 §4.5
 * `tcptype` extension: a strict parser and a serializer that refuses to
 * emit anything the parser would reject.
 *
 *   candidate-attribute = "candidate" ":" foundation SP component-id SP
 *                         transport SP priority SP connection-address SP
 *                         port SP cand-type [SP rel-addr] [SP rel-port]
 *                         *(SP cand-extension)
 */
import { isIPv6 } from 'node:net';
import type { Candidate, TcpType } from './candidate.js';
import { CandidateParseError } from '../errors.js';

const TCP_TYPES: readonly string[] = ['active', 'passive', 'so'];
/** Names the grammar gives a fixed place; as extension names they would be ambiguous. */
const RESERVED: readonly string[] = ['typ', 'raddr', 'rport', 'tcptype'];

/** foundation = 1*32 ice-char; ice-char = ALPHA / DIGIT / "+" / "/" (RFC 8839 §5.1). */
const FOUNDATION = /^[A-Za-z0-9+/]{1,32}$/;
/** token (RFC 8866 §9), used for extension-att-name. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
/** extension-att-value = *VCHAR; a value must exist, so at least one. */
const VCHARS = /^[\x21-\x7e]+$/;
/** Dotted quad; octets 0-255 without leading zeros, which some stacks read as octal. */
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** RFC 1123 host label: letters, digits, inner hyphens, 1-63 characters. */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function fail(field: string, input: string, message: string): never {
  throw new CandidateParseError(field, input, message);
}

/** Unsigned decimal of at most `digits` digits in [min, max]; no sign, point or exponent. */
function parseNumber(token: string | undefined, digits: number, min: number, max: number, field: string, input: string): number {
  if (token === undefined) fail(field, input, 'missing');
  if (!new RegExp(`^\\d{1,${digits}}$`).test(token)) fail(field, input, `"${token}" is not 1-${digits} digits`);
  const n = Number(token);
  if (n < min || n > max) fail(field, input, `${n} is outside ${min}..${max}`);
  return n;
}

function checkRange(n: number, min: number, max: number, field: string, input: string): void {
  if (!Number.isInteger(n) || n < min || n > max) fail(field, input, `${n} is not an integer in ${min}..${max}`);
}

/**
 * connection-address (RFC 8839 §5.1, from RFC 8866): IPv4, IPv6 or an FQDN
 * such as an mDNS `.local` name. Returns the address, IPv6 in lower case.
 * Zone ids (`fe80::1%eth0`) are refused: they are meaningless to the peer.
 */
function checkAddress(address: string | undefined, field: string, input: string): string {
  if (address === undefined || address === '') fail(field, input, 'missing');
  if (IPV4.test(address)) return address;
  if (!address.includes('%') && isIPv6(address)) return address.toLowerCase();
  const labels = address.split('.');
  // A last label of digits means a malformed IPv4 address (`1.2.3.256`,
  // `01.2.3.4`), not a name: RFC 1123 §2.1 top-level labels are not numeric.
  if (address.length <= 253 && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1]!)) {
    return address;
  }
  return fail(field, input, `"${address}" is not an IPv4, IPv6 or FQDN address`);
}

/** Whether `address` is a valid connection-address (IPv4, IPv6 or FQDN) of the grammar. */
export function isConnectionAddress(address: string): boolean {
  try {
    checkAddress(address, 'address', address);
    return true;
  } catch {
    return false;
  }
}

/** RFC 6544 §4.5: only an active TCP candidate, which never receives connections, may have port 0 (or 9). */
function checkPort(port: number, transport: string, tcpType: TcpType | undefined, input: string): void {
  if (port === 0 && !(transport === 'tcp' && tcpType === 'active')) {
    fail('port', input, 'port 0 is only allowed for tcptype active');
  }
}

/**
 * Parses one candidate line, with or without `a=` and a trailing CRLF.
 * Literal keywords are case-insensitive, as ABNF quoted strings are (RFC 5234 §2.3).
 */
export function parseCandidate(input: string): Candidate {
  if (typeof input !== 'string') fail('candidate', String(input), 'not a string');
  // Trailing blanks are tolerated; leading ones are not (`a= candidate` is no SDP line).
  const line = input.replace(/\r?\n$|\r$/, '').replace(/[ \t]+$/, '').replace(/^a=/, '');
  const tokens = line.split(/[ \t]+/);
  const head = tokens.shift();
  if (head === undefined || !/^candidate:/i.test(head)) fail('candidate', input, 'does not start with "candidate:"');

  const foundation = head.slice('candidate:'.length);
  if (!FOUNDATION.test(foundation)) fail('foundation', input, `"${foundation}" is not 1-32 of ALPHA / DIGIT / "+" / "/"`);
  const component = parseNumber(tokens.shift(), 3, 1, 256, 'component', input);
  // transport = "UDP" / transport-extension (a token, e.g. RFC 6544's TCP): extensions parse.
  const transportToken = tokens.shift();
  if (transportToken === undefined || !TOKEN.test(transportToken)) fail('transport', input, 'missing or not a token');
  const transport = transportToken.toLowerCase();
  const priority = parseNumber(tokens.shift(), 10, 1, 0xffffffff, 'priority', input);
  const address = checkAddress(tokens.shift(), 'address', input);
  const port = parseNumber(tokens.shift(), 5, 0, 65535, 'port', input);
  if (tokens.shift()?.toLowerCase() !== 'typ') fail('typ', input, 'expected "typ" after the port');
  // candidate-types = "host" / "srflx" / "prflx" / "relay" / token: unknown types parse too.
  const typeToken = tokens.shift();
  if (typeToken === undefined || !TOKEN.test(typeToken)) fail('typ', input, 'missing or not a token');
  const type = typeToken.toLowerCase();

  const c: Candidate = { type, transport, foundation, component, priority, address, port };
  // [SP rel-addr] [SP rel-port]: each is optional on its own in the grammar.
  if (tokens[0]?.toLowerCase() === 'raddr') {
    tokens.shift();
    c.relatedAddress = checkAddress(tokens.shift(), 'raddr', input);
  }
  if (tokens[0]?.toLowerCase() === 'rport') {
    tokens.shift();
    c.relatedPort = parseNumber(tokens.shift(), 5, 0, 65535, 'rport', input);
  }

  const extensions: Array<[string, string]> = [];
  while (tokens.length > 0) {
    const name = tokens.shift()!;
    const value = tokens.shift();
    const lower = name.toLowerCase();
    if (lower === 'tcptype') {
      if (transport !== 'tcp') fail('tcptype', input, 'tcptype on a non-TCP candidate');
      if (c.tcpType !== undefined) fail('tcptype', input, 'tcptype given twice');
      if (value === undefined || !TCP_TYPES.includes(value.toLowerCase())) fail('tcptype', input, 'must be active, passive or so');
      c.tcpType = value.toLowerCase() as TcpType;
      continue;
    }
    if (lower === 'typ' || lower === 'raddr' || lower === 'rport') fail(lower, input, `"${name}" out of place`);
    if (!TOKEN.test(name)) fail('extension', input, `"${name}" is not a token`);
    if (value === undefined || !VCHARS.test(value)) fail('extension', input, `extension "${name}" has no valid value`);
    extensions.push([name, value]);
  }
  // RFC 6544 §4.5: a TCP candidate is only usable if we know who connects.
  if (transport === 'tcp' && c.tcpType === undefined) fail('tcptype', input, 'TCP candidate without tcptype');
  checkPort(port, transport, c.tcpType, input);
  if (extensions.length > 0) c.extensions = extensions;
  return c;
}

/**
 * Emits `candidate:...` (`a=candidate:...` with `prefix: true`). Validates
 * every field first, so that the output always parses back to `c`.
 */
export function serializeCandidate(c: Candidate, opts: { prefix?: boolean } = {}): string {
  if (c === null || typeof c !== 'object') fail('candidate', String(c), 'not a candidate object');
  if (c.extensions !== undefined && !Array.isArray(c.extensions)) fail('extension', `candidate:${c.foundation}`, 'extensions must be an array of [name, value]');
  const input = `candidate:${c.foundation}`;
  if (typeof c.foundation !== 'string' || !FOUNDATION.test(c.foundation)) fail('foundation', input, 'invalid foundation');
  checkRange(c.component, 1, 256, 'component', input);
  if (typeof c.transport !== 'string' || !TOKEN.test(c.transport)) fail('transport', input, 'must be a token (udp, tcp ...)');
  checkRange(c.priority, 1, 0xffffffff, 'priority', input);
  const address = checkAddress(c.address, 'address', input);
  checkRange(c.port, 0, 65535, 'port', input);
  if (typeof c.type !== 'string' || !TOKEN.test(c.type)) fail('typ', input, 'must be a token (host, srflx, prflx, relay ...)');

  const parts = [input, c.component, c.transport, c.priority, address, c.port, 'typ', c.type];
  if (c.relatedAddress !== undefined) parts.push('raddr', checkAddress(c.relatedAddress, 'raddr', input));
  if (c.relatedPort !== undefined) {
    checkRange(c.relatedPort, 0, 65535, 'rport', input);
    parts.push('rport', c.relatedPort);
  }
  if (c.transport === 'tcp') {
    if (c.tcpType === undefined || !TCP_TYPES.includes(c.tcpType)) fail('tcptype', input, 'TCP candidate needs tcpType');
    parts.push('tcptype', c.tcpType);
  } else if (c.tcpType !== undefined) {
    fail('tcptype', input, 'tcpType on a non-TCP candidate');
  }
  checkPort(c.port, c.transport, c.tcpType, input);
  for (const [name, value] of c.extensions ?? []) {
    if (!TOKEN.test(name) || RESERVED.includes(name.toLowerCase())) fail('extension', input, `bad extension name "${name}"`);
    if (!VCHARS.test(value)) fail('extension', input, `bad value for extension "${name}"`);
    parts.push(name, value);
  }
  return (opts.prefix === true ? 'a=' : '') + parts.join(' ');
}
