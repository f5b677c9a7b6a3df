/**
 * Hole punching in the NAT rig (spec/support/netns.ts: two hosts behind their
 * own endpoint-independent NATs, coturn on the "public" network): time to
 * connected of two CLI peers, ours and libnice's, in the same run, and which
 * pair each selects. With `loss`, every NAT drops that share of the UDP it
 * forwards (iptables statistic; the kernel here has no netem), and the
 * figure of interest is how often the direct srflx↔srflx pair wins over the relay.
 * Needs root (namespaces); skipped with a reason otherwise.
 */
import { fileURLToPath } from 'node:url';
import { runPair, firstOf } from '../examples/relay.js';
import { parseCandidate } from '../lib/index.js';
import { cleanupStale, createNatRig, netnsAvailable } from '../spec/support/netns.js';
import { figure, type Figure } from './stats.js';

const OUR_PEER = fileURLToPath(new URL('../examples/peer.js', import.meta.url));
const LIBNICE_PEER = fileURLToPath(new URL('../../spec/interop/libnice-peer.py', import.meta.url));

type Impl = 'ice-agent' | 'libnice';

interface Run {
  ms: number;
  pair: string;
}

async function once(impl: Impl, loss: number): Promise<Run> {
  const rig = await createNatRig({ natA: 'eim', natB: 'eim' });
  try {
    const turn = await rig.startTurnServer({ extraArgs: ['--denied-peer-ip=198.51.100.0-198.51.100.255'] });
    if (loss > 0) {
      for (const ns of [rig.natA, rig.natB]) {
        await rig.exec(ns, 'iptables', ['-I', 'FORWARD', '-p', 'udp', '-m', 'statistic', '--mode', 'random', '--probability', String(loss), '-j', 'DROP']);
      }
    }
    const server = `${turn.address}:${turn.port}`;
    const args = ['--count', '20', '--size', '100', '--timeout', '25', '--stun', server, '--turn', server, '--turn-user', turn.user, '--turn-pass', turn.password];
    const cmd = (ns: string, role: string, host: string) => ({
      cmd: 'ip',
      args: ['netns', 'exec', ns, ...(impl === 'ice-agent' ? [process.execPath, OUR_PEER] : ['/usr/bin/python3', LIBNICE_PEER]), '--role', role, '--host', host, ...args],
    });
    const r = await runPair({ a: cmd(rig.hostA, 'controlling', rig.hostAAddress), b: cmd(rig.hostB, 'controlled', rig.hostBAddress), timeoutMs: 60_000 });
    const ca = firstOf(r.a, 'connected');
    const cb = firstOf(r.b, 'connected');
    if (!ca || !cb) throw new Error(`${impl} did not connect: ${r.a.stderr.slice(-300)} | ${r.b.stderr.slice(-300)}`);
    const l = parseCandidate(String(ca.local));
    const rm = parseCandidate(String(ca.remote));
    return { ms: Math.max(Number(ca.ms), Number(cb.ms)), pair: `${l.type}-${rm.type}` };
  } finally {
    await rig.destroy();
  }
}

export interface HolePunchResult {
  loss: number;
  iceAgent: Figure;
  libnice: Figure | undefined;
  ratio: number | undefined;
  /** Selected pair types over the runs, e.g. { 'srflx-srflx': 9, 'relay-srflx': 1 }. */
  pairs: Record<Impl, Record<string, number>>;
  skipped?: string;
  error?: string;
}

export async function benchHolePunch(repeats: number, loss = 0, withLibnice = true): Promise<HolePunchResult> {
  const empty: HolePunchResult = { loss, iceAgent: figure([], 'ms'), libnice: undefined, ratio: undefined, pairs: { 'ice-agent': {}, libnice: {} } };
  const av = await netnsAvailable();
  if (!av.ok) return { ...empty, skipped: av.reason };
  await cleanupStale();
  const ours: number[] = [];
  const theirs: number[] = [];
  const pairs: HolePunchResult['pairs'] = { 'ice-agent': {}, libnice: {} };
  let error: string | undefined;
  for (let i = 0; i < repeats; i++) {
    for (const impl of (withLibnice ? ['ice-agent', 'libnice'] : ['ice-agent']) as Impl[]) {
      try {
        const r = await once(impl, loss);
        (impl === 'ice-agent' ? ours : theirs).push(r.ms);
        pairs[impl][r.pair] = (pairs[impl][r.pair] ?? 0) + 1;
      } catch (e) {
        error = (e as Error).message;
        pairs[impl].failed = (pairs[impl].failed ?? 0) + 1;
      }
    }
  }
  const iceAgent = figure(ours, 'ms');
  const libnice = theirs.length ? figure(theirs, 'ms') : undefined;
  return { loss, iceAgent, libnice, ratio: libnice ? iceAgent.median / libnice.median : undefined, pairs, ...(error ? { error } : {}) };
}
