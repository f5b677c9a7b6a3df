/**
 * The options, counters and listings of the simulated TURN server (lib/sim/turn-server.ts).
 */
import type { TransportAddress } from '../transport/address.js';
import type { LinkOptions } from './types.js';

export interface SimTurnServerOptions extends Partial<LinkOptions> {
  /** One user (with `password`); `users` adds more. */
  username?: string;
  password?: string;
  /** username -> password. */
  users?: Readonly<Record<string, string>>;
  /** REALM (default 'sim'). */
  realm?: string;
  /** Default allocation lifetime in seconds (default 600, RFC 8656 §7.2). */
  lifetime?: number;
  /** Longest lifetime granted, in seconds (default 3600). */
  maxLifetime?: number;
  /** Permission lifetime in seconds (default 300, RFC 8656 §9). */
  permissionLifetime?: number;
  /** Channel binding lifetime in seconds (default 600, RFC 8656 §12). */
  channelLifetime?: number;
  /** Virtual ms after which the nonce goes stale (a new one is made; requests with the old get 438). Default: never. */
  nonceLifetime?: number;
  /** Relayed ports are drawn from this range (default [49152, 65535]). */
  relayPortRange?: [number, number];
  /** SOFTWARE in responses; none by default. */
  software?: string;
}

/** Counters of a TURN server (a snapshot; `active` counts live allocations). */
export interface SimTurnServerStats {
  /** Allocations made. */
  allocations: number;
  /** Allocations alive now. */
  active: number;
  /** Deleted by Refresh with LIFETIME 0. */
  deallocations: number;
  /** Timed out. */
  expired: number;
  refreshes: number;
  /** Permissions installed (not counting refreshes), by CreatePermission or ChannelBind. */
  permissions: number;
  /** Channels bound (not counting refreshes). */
  channels: number;
  /** Datagrams relayed from clients to peers, and from peers to clients. */
  relayedOut: number;
  relayedIn: number;
  /** 401 responses (including the first challenge of every allocation). */
  unauthorized: number;
  /** 438 responses. */
  staleNonce: number;
  /** Other error responses. */
  errors: number;
  /** Binding requests answered. */
  bindings: number;
  /** Datagrams dropped: no allocation, no permission, no channel, denied peer, malformed, silent. */
  dropped: number;
}

/** One allocation, as `SimTurnServer.allocations()` lists it. */
export interface SimTurnAllocation {
  client: TransportAddress;
  relayed: TransportAddress;
  username: string;
  /** Virtual ms. */
  expiresAt: number;
  permissions: Array<{ address: string; expiresAt: number }>;
  channels: Array<{ channel: number; peer: TransportAddress; expiresAt: number }>;
}
