/**
 * TURN-specific reading of server answers (RFC 8656) beyond what
 * lib/stun/message.ts offers: error responses in words, Allocate success
 * responses, Data indications, and the UDP retransmission schedule.
 */
import {
  TURN_METHOD,
  getData,
  getErrorCode,
  getLifetime,
  getXorMappedAddress,
  getXorPeerAddress,
  getXorRelayedAddress,
  type DecodedStun,
} from '../stun/message.js';
import { canonicalIp, type TransportAddress } from '../transport/address.js';

export const METHOD_NAMES: Record<number, string> = {
  [TURN_METHOD.ALLOCATE]: 'Allocate',
  [TURN_METHOD.REFRESH]: 'Refresh',
  [TURN_METHOD.CREATE_PERMISSION]: 'CreatePermission',
  [TURN_METHOD.CHANNEL_BIND]: 'ChannelBind',
};

/** What the error codes TURN clients meet mean (RFC 8489 §14.8, RFC 8656 §19). */
export const ERROR_MEANINGS: Record<number, string> = {
  300: 'try alternate server (redirection is not supported)',
  400: 'bad request',
  401: 'unauthorized: wrong username or password',
  403: 'forbidden',
  420: 'unknown attribute',
  437: 'allocation mismatch',
  438: 'stale nonce',
  440: 'address family not supported',
  441: 'wrong credentials',
  442: 'unsupported transport protocol',
  443: 'peer address family mismatch',
  486: 'allocation quota reached',
  500: 'server error',
  508: 'insufficient capacity',
};

/** An error response in words: `Allocate failed: allocation quota reached (server said "...")`, with its code. */
export function describeError(res: DecodedStun): { code: number | undefined; reason: string } {
  const method = METHOD_NAMES[res.method] ?? `method 0x${res.method.toString(16)}`;
  const e = getErrorCode(res);
  if (e === undefined) return { code: undefined, reason: `${method}: error response without ERROR-CODE` };
  const said = e.reason.trim();
  return { code: e.code, reason: `${method} failed: ${ERROR_MEANINGS[e.code] ?? 'error'}${said ? ` (server said "${said}")` : ''}` };
}

export interface AllocateResult {
  relayed: { address: string; port: number; family: 'IPv4' | 'IPv6' };
  mapped: { address: string; port: number } | undefined;
  lifetime: number;
}

/**
 * An Allocate success response (RFC 8656 §7.1): XOR-RELAYED-ADDRESS (required),
 * XOR-MAPPED-ADDRESS, LIFETIME (600 s should it be missing), addresses in
 * canonical form. Undefined without a usable XOR-RELAYED-ADDRESS.
 */
export function decodeAllocateSuccess(res: DecodedStun): AllocateResult | undefined {
  const relayed = getXorRelayedAddress(res);
  const relayedIp = relayed && canonicalIp(relayed.address);
  if (relayedIp === undefined) return undefined;
  const mapped = getXorMappedAddress(res);
  const mappedIp = mapped && canonicalIp(mapped.address);
  return {
    relayed: { address: relayedIp, port: relayed!.port, family: relayed!.family },
    mapped: mappedIp !== undefined ? { address: mappedIp, port: mapped!.port } : undefined,
    lifetime: getLifetime(res) ?? 600,
  };
}

/** A Data indication (RFC 8656 §11.4): XOR-PEER-ADDRESS and DATA, both required; undefined if either is missing. */
export function decodeDataIndication(m: DecodedStun): { data: Buffer; peer: TransportAddress } | undefined {
  const peer = getXorPeerAddress(m);
  const data = getData(m);
  const address = peer && canonicalIp(peer.address);
  if (address === undefined || data === undefined) return undefined;
  return { data, peer: { address, port: peer!.port } };
}

/**
 * UDP retransmission waits, RFC 8489 §6.2.1: RTO, 2·RTO, 4·RTO …, at most Rc = 7
 * transmissions, cut so that they add up to `budget`.
 */
export function udpWaits(rto: number, budget: number): number[] {
  const waits: number[] = [];
  let left = budget;
  let w = rto;
  while (left > 0 && waits.length < 7) {
    const x = Math.min(w, left);
    waits.push(x);
    left -= x;
    w *= 2;
  }
  if (left > 0) waits[waits.length - 1]! += left;
  return waits.length > 0 ? waits : [0];
}
