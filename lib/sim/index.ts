/**
 * The in-memory network: hosts, NATs (RFC 4787 behaviours), STUN and TURN
 * servers on a virtual clock, reproducible from a seed. Every host's
 * `network` implements the library's I/O seam (lib/transport/network.ts), so
 * two agents connect without a socket, for the project's protocol tests and
 * for users' own.
 *
 * ```ts
 * const net = new SimNetwork({ seed: 42, delay: 5 });
 * const nat = net.addNat({ publicAddress: '203.0.113.10', type: 'port-restricted-cone' });
 * const a = net.addHost('192.168.1.2', { nat });
 * const b = net.addHost('198.51.100.2');
 * net.addStunServer('203.0.113.1', 3478);
 * net.addTurnServer('203.0.113.1', 3478, { username: 'u', password: 'p' });
 * // new Agent({ network: a.network, ... }), new Agent({ network: b.network, ... })
 * await net.run({ until: () => connected, timeout: 30_000 });
 * ```
 */
export { SimNetwork, type SimNetworkOptions, type RunOptions } from './network.js';
export { SimHost, SimDatagramSocket, EPHEMERAL_PORTS, type SimHostOptions, type SimHostStats } from './host.js';
export { SimNat, NAT_TYPES, type NatBehavior, type NatType, type NatMapping, type SimNatOptions, type SimNatStats } from './nat.js';
export { SimStunServer, type SimStunServerOptions, type SimStunServerStats } from './stun-server.js';
export {
  SimTurnServer, type SimTurnAllocation, type SimTurnServerOptions, type SimTurnServerStats,
} from './turn-server.js';
export { SimStreamSocket, SimStreamListener } from './stream.js';
export { VirtualClock, SimEvent } from './clock.js';
export { Prng, type Seed } from './random.js';
export {
  SimTimeoutError, DEFAULT_LINK,
  type LinkOptions, type DropReason, type SimPacketEvent, type SimStats, type SimProtocol,
} from './types.js';
