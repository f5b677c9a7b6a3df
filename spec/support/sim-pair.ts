/**
 * Two agents on the in-memory network (lib/sim), each public or behind its
 * own NAT, with a STUN and a TURN server offered: the fixture of the core's
 * protocol tests. Everything runs on virtual time from a seed.
 */
import { Agent, type AgentOptions, type ComponentState } from '../../lib/index.js';
import { SimNetwork, type SimHost, type SimTurnServer, type SimStunServer } from '../../lib/sim/index.js';

export type Side = 'none' | 'eim' | 'symmetric';

export const SERVER = '203.0.113.1';
export const USER = 'user';
export const PASS = 'pass';

export interface SimPair {
  net: SimNetwork;
  stun: SimStunServer;
  turn: SimTurnServer;
  hostA: SimHost;
  hostB: SimHost;
  a: Agent;
  b: Agent;
  sa: number;
  sb: number;
}

export interface SimPairOptions {
  seed?: number;
  sideA?: Side;
  sideB?: Side;
  loss?: number;
  delay?: number;
  jitter?: number;
  /** Offer the STUN and TURN servers (default true). */
  servers?: boolean;
  a?: AgentOptions;
  b?: AgentOptions;
  components?: number;
  streams?: number;
}

/** Loss is on each agent's access link: a datagram between the two crosses two lossy links, one to a server one. */
function host(net: SimNetwork, side: Side, publicIp: string, natIp: string, loss: number): SimHost {
  if (side === 'none') return net.addHost(publicIp, { loss });
  // 'eim': endpoint-independent mapping, address-and-port-dependent filtering (iptables MASQUERADE, a
  // port-restricted cone); 'symmetric': address-and-port-dependent mapping too.
  const nat = net.addNat({ publicAddress: natIp, type: side === 'eim' ? 'port-restricted-cone' : 'symmetric' });
  // The same private address on both sides, as two homes often have.
  return net.addHost('192.168.1.2', { nat, loss });
}

/** Builds the network and the two agents; gathers; swaps credentials (not candidates). */
export async function simPair(o: SimPairOptions = {}): Promise<SimPair> {
  const net = new SimNetwork({ seed: o.seed ?? 1, delay: o.delay ?? 5, jitter: o.jitter ?? 0 });
  const stun = net.addStunServer(SERVER, 3478);
  const turn = net.addTurnServer(SERVER, 3478, { username: USER, password: PASS });
  const hostA = host(net, o.sideA ?? 'none', '198.51.100.2', '203.0.113.10', o.loss ?? 0);
  const hostB = host(net, o.sideB ?? 'none', '198.51.100.3', '203.0.113.20', o.loss ?? 0);
  const servers: AgentOptions = o.servers === false ? {} : {
    stunServers: [stun.url], turnServers: [{ url: turn.url, username: USER, credential: PASS }],
  };
  const a = new Agent({ controllingMode: true, network: hostA.network, ...servers, ...o.a });
  const b = new Agent({ controllingMode: false, network: hostB.network, ...servers, ...o.b });
  const nStreams = o.streams ?? 1;
  const sa = a.addStream(o.components ?? 1);
  const sb = b.addStream(o.components ?? 1);
  for (let i = 1; i < nStreams; i++) {
    a.addStream(o.components ?? 1);
    b.addStream(o.components ?? 1);
  }
  let gathered = 0;
  const ids = [...Array(nStreams).keys()].map((i) => i + 1);
  for (const id of ids) {
    void a.gatherCandidates(id).then(() => gathered++);
    void b.gatherCandidates(id).then(() => gathered++);
  }
  await net.run({ until: () => gathered === 2 * nStreams, timeout: 20_000 });
  for (const id of ids) {
    const ca = a.getLocalCredentials(id);
    const cb = b.getLocalCredentials(id);
    a.setRemoteCredentials(id, cb.ufrag, cb.pwd);
    b.setRemoteCredentials(id, ca.ufrag, ca.pwd);
  }
  return { net, stun, turn, hostA, hostB, a, b, sa, sb };
}

/** Gives each side the other's candidates for every stream and component. */
export function exchange(p: SimPair, streams = 1, components = 1): void {
  for (let s = 1; s <= streams; s++) {
    for (let c = 1; c <= components; c++) {
      p.a.setRemoteCandidates(s, c, p.b.getLocalCandidates(s, c));
      p.b.setRemoteCandidates(s, c, p.a.getLocalCandidates(s, c));
    }
  }
}

/** Runs virtual time until every (agent, stream, component) listed is in `state`. */
export async function runUntilState(p: SimPair, state: ComponentState, who: Array<[Agent, number, number]>, timeout = 30_000): Promise<void> {
  await p.net.run({ until: () => who.every(([ag, s, c]) => ag.getComponentState(s, c) === state), timeout });
}

/** Closes both agents on virtual time and checks nothing is left on the clock. */
export async function closePair(p: SimPair): Promise<void> {
  let closed = false;
  void Promise.all([p.a.close(), p.b.close()]).then(() => { closed = true; });
  await p.net.run({ until: () => closed, timeout: 10_000 });
}

/** Awaits a promise while virtual time runs (nothing on the in-memory network moves otherwise). */
export async function during<T>(p: SimPair, promise: Promise<T>, timeout = 30_000): Promise<T> {
  let done = false;
  const settled = promise.then(() => { done = true; }, () => { done = true; });
  await p.net.run({ until: () => done, timeout });
  await settled;
  return promise;
}
