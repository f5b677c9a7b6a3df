/** Two agents in one process, one stream of one component each, connected over loopback. */
import { Agent, type AgentOptions } from '../lib/index.js';
import { withTimeout } from './stats.js';

export interface ConnectedPair {
  a: Agent;
  b: Agent;
  sa: number;
  sb: number;
}

/** Resolves when both components are ready; rejects if one fails or after `timeoutMs`. */
export async function connectedPair(opts: AgentOptions = {}, timeoutMs = 30000): Promise<ConnectedPair> {
  const base = { localAddresses: ['127.0.0.1'], ...opts };
  const a = new Agent({ ...base, controllingMode: true });
  const b = new Agent({ ...base, controllingMode: false });
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  const ca = a.getLocalCredentials(sa);
  const cb = b.getLocalCredentials(sb);
  const ready = (x: Agent) => new Promise<void>((r, j) => x.on('component-state-changed', (_s, _c, st) => {
    if (st === 'ready') r();
    if (st === 'failed') j(new Error('failed'));
  }));
  const both = Promise.all([ready(a), ready(b)]);
  a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
  b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  await withTimeout(both, timeoutMs, 'pair ready');
  return { a, b, sa, sb };
}
