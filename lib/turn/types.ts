/**
 * The types a TURN allocation machine (allocation.ts) shares with its users:
 * its configuration, the I/O passed to each call, its events and counters.
 */
import type { TurnError } from '../errors.js';
import type { TransportAddress } from '../transport/address.js';

export interface AllocationConfig {
  /** As configured, for errors (TurnError.server). */
  url: string;
  /** Resolved server address (canonical) and port. */
  server: TransportAddress;
  /** Of the link to the server. */
  transport: 'udp' | 'tcp' | 'tls';
  username: string;
  password: string;
  /** Bounds the whole Allocate, and each later request. */
  timeoutMs: number;
  /** UDP initial RTO, default 500 (RFC 8489 §6.2.1), doubling, Rc = 7, cut to the budget. */
  rto?: number;
  /** Seconds to ask for; default: the server's choice. */
  lifetime?: number;
  /** Default 60000, but never later than half the lifetime. */
  refreshMarginMs?: number;
  /** Default 240000 (permissions last 300 s, §9). */
  permissionRefreshMs?: number;
  /** Default 540000 (channels last 600 s, §12). */
  channelRefreshMs?: number;
  software?: string;
}

/** What a call may do to the outside world; passed to every call, never stored. */
export interface AllocationIo {
  now: number;
  /** To the server, on the allocation's link (a UDP datagram or a whole TCP/TLS frame). */
  send(data: Buffer): void;
  /** Transaction ids. */
  randomBytes(n: number): Buffer;
  emit(event: AllocationEvent): void;
}

export type AllocationEvent =
  | { type: 'allocated'; relayed: TransportAddress & { family: 'IPv4' | 'IPv6' }; mapped: TransportAddress | undefined; lifetime: number }
  /** Allocate did not succeed (refused, wrong credentials, timeout); state 'closed'. */
  | { type: 'failed'; error: TurnError }
  /** An allocation that existed is gone (refresh refused or unanswered, 437, link lost); state 'closed'. */
  | { type: 'lost'; error: TurnError }
  | { type: 'refresh'; kind: 'allocation' | 'permission' | 'channel'; detail: number | string }
  | { type: 'refresh-failed'; kind: 'permission' | 'channel'; error: TurnError }
  /** The first CreatePermission for `address` succeeded (or failed, and the permission is forgotten). */
  | { type: 'permission'; address: string; error?: TurnError }
  /** The first ChannelBind for `peer` succeeded (or failed, and the channel is forgotten). */
  | { type: 'channel'; peer: TransportAddress; channel?: number; error?: TurnError }
  /** After close(): deallocation answered or given up; nothing left to do. */
  | { type: 'closed' };

export type AllocationState = 'new' | 'allocating' | 'allocated' | 'closing' | 'closed';

/** Counters. "Dropped" packets never throw; they are counted here. */
export interface TurnStats {
  /** Requests started (retransmissions not counted). */
  requests: number;
  retransmissions: number;
  /** Responses matched to a request and accepted. */
  responses: number;
  /** 438 Stale Nonce answers retried with the new nonce. */
  staleNonces: number;
  /** Successful allocation refreshes (not counting the deallocation). */
  allocationRefreshes: number;
  permissionsInstalled: number;
  permissionRefreshes: number;
  channelsBound: number;
  channelRefreshes: number;
  sendIndications: number;
  channelDataSent: number;
  dataIndications: number;
  channelDataReceived: number;
  /** send() calls whose data was not sent (no allocation, queue full, permission refused). */
  sendDropped: number;
  /** Packets from the server that did not parse as STUN or ChannelData. */
  malformed: number;
  /** Well-formed packets that were not expected: unknown transaction, bad integrity, unknown channel, another source. */
  unexpected: number;
}

export function newTurnStats(): TurnStats {
  return {
    requests: 0, retransmissions: 0, responses: 0, staleNonces: 0, allocationRefreshes: 0,
    permissionsInstalled: 0, permissionRefreshes: 0, channelsBound: 0, channelRefreshes: 0,
    sendIndications: 0, channelDataSent: 0, dataIndications: 0, channelDataReceived: 0,
    sendDropped: 0, malformed: 0, unexpected: 0,
  };
}

/** An allocation as a session export keeps it (lib/turn/allocation.ts snapshot/restore). Times are ms left. */
export interface AllocationSnapshot {
  realm: string;
  nonce: string;
  relayed: TransportAddress & { family: 'IPv4' | 'IPv6' };
  mapped?: TransportAddress;
  lifetime: number;
  refreshIn: number;
  expiresIn: number;
  permissions: Array<{ address: string; refreshIn: number }>;
  channels: Array<{ number: number; peer: TransportAddress; refreshIn: number }>;
}
