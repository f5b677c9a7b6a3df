/**
 * STUN and TURN server URIs: RFC 7064 (`stun:`, `stuns:`) and RFC 7065
 * (`turn:`, `turns:`).
 *
 *   stunURI = scheme ":" host [ ":" port ]
 *   turnURI = scheme ":" host [ ":" port ] [ "?transport=" transport ]
 *
 * There is no "//" authority prefix and no user-info: credentials are given
 * beside the URI, never inside it (RFC 7065 §3). The secure schemes run over
 * TLS (or DTLS, which this library does not implement).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError, show } from '../errors.js';

export type IceServerScheme = 'stun' | 'stuns' | 'turn' | 'turns';
export type IceServerTransport = 'udp' | 'tcp';

export interface IceServerUrl {
  scheme: IceServerScheme;
  /** Host name or IP address; IPv6 without the brackets. */
  host: string;
  port: number;
  /** Transport to the server: `udp`, or `tcp` (TLS over TCP when `secure`). */
  transport: IceServerTransport;
  /** `stuns:` / `turns:`: TLS to the server. */
  secure: boolean;
}

/** Default ports, RFC 8489 §18.6 (3478 for STUN/TURN, 5349 over TLS). */
export const DEFAULT_PORT = 3478;
export const DEFAULT_TLS_PORT = 5349;

const SCHEMES: readonly string[] = ['stun', 'stuns', 'turn', 'turns'];

/**
 * A DNS name (RFC 1123 labels; underscores tolerated, as resolvers do). RFC
 * 3986 reg-name allows more, but nothing else can name a STUN/TURN server.
 */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/**
 * Parses a `stun:`, `stuns:`, `turn:` or `turns:` URI. Throws
 * InvalidArgumentError('url', …) saying which part is wrong.
 */
export function parseIceServerUrl(url: string): IceServerUrl {
  function fail(what: string): never {
    throw new InvalidArgumentError('url', `${show(url)}: ${what}`);
  }
  if (typeof url !== 'string') fail('must be a string');
  const colon = url.indexOf(':');
  if (colon < 0) fail('missing scheme (expected stun:, stuns:, turn: or turns:)');
  // Schemes are case-insensitive (RFC 3986 §3.1).
  const scheme = url.slice(0, colon).toLowerCase();
  if (!SCHEMES.includes(scheme)) fail(`unsupported scheme "${url.slice(0, colon)}" (expected stun, stuns, turn or turns)`);
  const secure = scheme.endsWith('s');
  const isTurn = scheme.startsWith('turn');

  let rest = url.slice(colon + 1);
  if (rest.startsWith('//')) fail('no "//" after the scheme: the form is scheme:host[:port] (RFC 7064/7065)');

  // Query: only `transport=` and only on turn(s) (RFC 7065 §3); stun(s) have none (RFC 7064 §3.1).
  let transport: IceServerTransport = secure ? 'tcp' : 'udp';
  const q = rest.indexOf('?');
  if (q >= 0) {
    const query = rest.slice(q + 1);
    rest = rest.slice(0, q);
    if (!isTurn) fail(`a ${scheme}: URI takes no query ("?${query}")`);
    const m = /^transport=(.*)$/i.exec(query);
    if (!m) fail(`unsupported query "?${query}" (only ?transport=udp or ?transport=tcp)`);
    const t = m[1]!.toLowerCase();
    if (t !== 'udp' && t !== 'tcp') fail(`unsupported transport "${m[1]}" (expected udp or tcp)`);
    if (secure && t === 'udp') fail('turns: over udp means DTLS, which is not supported (use ?transport=tcp)');
    transport = t as IceServerTransport;
  }
  if (rest.includes('#')) fail('a fragment ("#") is not allowed');
  if (rest.includes('@')) fail('user-info ("user@") is not allowed: give the username and password separately');

  // Host: "[IPv6]", IPv4, or a DNS name; then an optional ":port".
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) fail('unterminated "[" in the IPv6 address');
    host = rest.slice(1, close);
    if (!isIPv6(host)) fail(`"${host}" is not an IPv6 address`);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) fail(`unexpected "${after}" after the IPv6 address`);
      portText = after.slice(1);
    }
  } else {
    const c = rest.indexOf(':');
    host = c < 0 ? rest : rest.slice(0, c);
    if (c >= 0) portText = rest.slice(c + 1);
    if (host === '') fail('missing host');
    if (portText !== undefined && portText.includes(':')) {
      fail('an IPv6 address must be written in brackets, e.g. turn:[2001:db8::1]:3478');
    }
    if (!isIPv4(host) && !HOSTNAME.test(host)) fail(`invalid host "${host}"`);
    // A bare "1.2.3" or "999.1.1.1" looks like an address but is not one; refuse rather than resolve it as a name.
    if (/^[\d.]+$/.test(host) && !isIPv4(host)) fail(`invalid IPv4 address "${host}"`);
  }

  let port = secure ? DEFAULT_TLS_PORT : DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) fail(`invalid port "${portText}"`);
    port = Number(portText);
    if (port < 1 || port > 65535) fail(`port ${port} out of range 1-65535`);
  }
  return { scheme: scheme as IceServerScheme, host, port, transport, secure };
}
