/**
 * Time to ready on loopback, host candidates only: two agents in one process,
 * both nomination modes, trickle on and off. Measured from the start of
 * gathering to both components ready, so that trickle's overlap of gathering
 * and checking counts.
 */
import { performance } from 'node:perf_hooks';
import { Agent, type Candidate, type NominationMode } from '../lib/index.js';
import { figure, type Figure, withTimeout } from './stats.js';

function ready(agent: Agent, streamId: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const on = (s: number, _c: number, st: string) => {
      if (s !== streamId) return;
      if (st === 'ready') { agent.off('component-state-changed', on); resolve(); }
      if (st === 'failed') { agent.off('component-state-changed', on); reject(new Error('failed')); }
    };
    agent.on('component-state-changed', on);
  });
}

export async function connectOnce(mode: NominationMode, trickle: boolean): Promise<number> {
  const opts = { localAddresses: ['127.0.0.1'], nominationMode: mode, iceTrickle: trickle };
  const a = new Agent({ ...opts, controllingMode: true });
  const b = new Agent({ ...opts, controllingMode: false });
  try {
    const sa = a.addStream(1);
    const sb = b.addStream(1);
    const t0 = performance.now();
    const done = Promise.all([ready(a, sa), ready(b, sb)]);
    const ca = a.getLocalCredentials(sa);
    const cb = b.getLocalCredentials(sb);
    a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
    b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
    if (trickle) {
      a.on('new-candidate', (c: Candidate) => b.addRemoteCandidate(sb, c));
      b.on('new-candidate', (c: Candidate) => a.addRemoteCandidate(sa, c));
      a.on('candidate-gathering-done', () => b.peerCandidateGatheringDone(sb));
      b.on('candidate-gathering-done', () => a.peerCandidateGatheringDone(sa));
      await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
    } else {
      await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
      a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
      b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
    }
    await withTimeout(done, 10000, 'connect');
    return performance.now() - t0;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

export interface ConnectResult {
  mode: NominationMode;
  trickle: boolean;
  ms: Figure;
}

export async function benchConnectInProcess(repeats: number): Promise<ConnectResult[]> {
  const out: ConnectResult[] = [];
  for (const mode of ['regular', 'aggressive'] as const) {
    for (const trickle of [false, true]) {
      const samples: number[] = [];
      await connectOnce(mode, trickle); // warm-up
      for (let i = 0; i < repeats; i++) samples.push(await connectOnce(mode, trickle));
      out.push({ mode, trickle, ms: figure(samples, 'ms') });
    }
  }
  return out;
}
