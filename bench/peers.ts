/**
 * Time to connected for two CLI peers in separate processes over loopback:
 * ice-agent ↔ ice-agent (examples/peer), and as the references libnice ↔
 * libnice (the interop peer of the tests) and pion ↔ pion
 * (spec/interop/pion-peer, built on first use by spec/support/pion.ts),
 * alternated so noise hits all alike. The figure is what each peer reports in
 * `connected.ms` (ms from the remote credentials arriving to a selected pair),
 * the larger of the two sides.
 *
 * A controlling pion/ice v2 agent nominates the regular way only (its peer
 * refuses `--nomination aggressive` with `--role controlling`), so the
 * aggressive rows have no pion figure.
 */
import { fileURLToPath } from 'node:url';
import { runPair, firstOf } from '../examples/relay.js';
import { pionPeer } from '../spec/support/pion.js';
import { figure, type Figure } from './stats.js';

const OUR_PEER = fileURLToPath(new URL('../examples/peer.js', import.meta.url));
const LIBNICE_PEER = fileURLToPath(new URL('../../spec/interop/libnice-peer.py', import.meta.url));

type Impl = 'ice-agent' | 'libnice' | 'pion';

async function once(impl: Impl, nomination: 'regular' | 'aggressive', trickle: boolean, pionPath?: string): Promise<number> {
  const args = ['--host', '127.0.0.1', '--count', '50', '--size', '100', '--nomination', nomination, ...(trickle ? ['--trickle'] : [])];
  const spec = (role: string) => impl === 'ice-agent'
    ? { cmd: process.execPath, args: [OUR_PEER, '--role', role, ...args] }
    : impl === 'pion'
      ? { cmd: pionPath!, args: ['--role', role, ...args] }
      : { cmd: '/usr/bin/python3', args: [LIBNICE_PEER, '--role', role, ...args] };
  const r = await runPair({ a: spec('controlling'), b: spec('controlled'), timeoutMs: 30000 });
  const ca = firstOf(r.a, 'connected');
  const cb = firstOf(r.b, 'connected');
  if (!ca || !cb) throw new Error(`${impl} peers did not connect: ${r.a.stderr.slice(-300)} ${r.b.stderr.slice(-300)}`);
  return Math.max(Number(ca.ms), Number(cb.ms));
}

export interface PeersResult {
  nomination: 'regular' | 'aggressive';
  trickle: boolean;
  iceAgent: Figure;
  libnice: Figure | undefined;
  /** ice-agent / libnice (below 1: we connect faster). */
  ratio: number | undefined;
  libniceError?: string;
  pion?: Figure | undefined;
  /** ice-agent / pion (below 1: we connect faster). */
  pionRatio?: number | undefined;
  /** Why there is no pion figure (not installed, does not build, or the mode pion does not have). */
  pionError?: string;
}

export async function benchPeers(repeats: number): Promise<PeersResult[]> {
  const pion = await pionPeer();
  const out: PeersResult[] = [];
  for (const nomination of ['regular', 'aggressive'] as const) {
    for (const trickle of [false, true]) {
      const ours: number[] = [];
      const theirs: number[] = [];
      const pions: number[] = [];
      let libniceError: string | undefined;
      let pionError: string | undefined = !pion.ok
        ? pion.reason
        : nomination === 'aggressive' ? 'a controlling pion/ice v2 agent nominates the regular way only' : undefined;
      for (let i = 0; i < repeats; i++) {
        ours.push(await once('ice-agent', nomination, trickle));
        if (!libniceError) {
          try {
            theirs.push(await once('libnice', nomination, trickle));
          } catch (e) {
            libniceError = (e as Error).message;
          }
        }
        if (!pionError && pion.ok) {
          try {
            pions.push(await once('pion', nomination, trickle, pion.path));
          } catch (e) {
            pionError = (e as Error).message;
          }
        }
      }
      const iceAgent = figure(ours, 'ms');
      const libnice = theirs.length ? figure(theirs, 'ms') : undefined;
      const pionFigure = pions.length ? figure(pions, 'ms') : undefined;
      out.push({
        nomination, trickle, iceAgent, libnice,
        ratio: libnice ? iceAgent.median / libnice.median : undefined,
        ...(libniceError ? { libniceError } : {}),
        pion: pionFigure,
        pionRatio: pionFigure && pionFigure.median > 0 ? iceAgent.median / pionFigure.median : undefined,
        ...(pionError ? { pionError } : {}),
      });
    }
  }
  return out;
}
