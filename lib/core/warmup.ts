/**
 * A fresh Node process runs the first connection's code cold: parsing,
 * compiling and optimising every function on the path (encoding and
 * verifying checks, the checklist, selection) costs more than the
 * connection's round trips on loopback. Profiling the CLI peers showed the
 * first check leaving 8 ms after the remote credentials and each packet
 * taking 2-5 ms to handle. So, once per process, before the first gathering,
 * two throwaway cores connect to each other in memory — no socket, no timer,
 * the environment's randomness untouched (a fixed byte source) — which takes
 * a few milliseconds of CPU while the sockets are being bound anyway.
 */
import { resolveOptions } from '../options.js';
import { IceCore } from './core.js';
import { AgentLog } from '../log.js';
import { serializeCandidate } from './candidate-attribute.js';

let done = false;

export function warmUp(): void {
  if (done) return;
  done = true;
  try {
    run();
  } catch {
    // Only an optimisation: whatever went wrong here does not concern the agent.
  }
}

function run(): void {
  let counter = 0;
  const randomBytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (counter = (counter * 1103515245 + 12345) >>> 0) >>> 24;
    return b;
  };
  const queue: Array<{ to: IceCore; id: number; from: { address: string; port: number }; data: Buffer }> = [];
  let now = 0;
  const ports = new Map<IceCore, { port: number; id: number }>();
  const make = (controlling: boolean): IceCore => {
    const core: IceCore = new IceCore(resolveOptions({ controllingMode: controlling }), {
      transmit: (_id, to, data) => {
        const peer = [...ports].find(([, v]) => v.port === to.port);
        if (peer) queue.push({ to: peer[0], id: peer[1].id, from: { address: '127.0.0.1', port: ports.get(core)!.port }, data: Buffer.from(data) });
        return true;
      },
      deliver: () => true,
      randomBytes,
      log: new AgentLog('warm-up', undefined, 'silent'),
    }, now);
    return core;
  };
  const a = make(true);
  const b = make(false);
  for (const [core, port] of [[a, 1], [b, 2]] as const) {
    const s = core.addStream(1);
    core.beginGathering(s);
    ports.set(core, { port, id: core.addHostTransport(s, 1, { address: '127.0.0.1', port }, 0, now) });
    core.startServers(s, { stun: [], turn: [] }, now);
  }
  const ca = a.stream(1).local;
  const cb = b.stream(1).local;
  a.setRemoteCredentials(1, cb.ufrag, cb.pwd, now);
  b.setRemoteCredentials(1, ca.ufrag, ca.pwd, now);
  // As strings, the way signalling brings them.
  a.addRemoteCandidates(1, 1, b.localCandidates(1, 1).map((c) => serializeCandidate(c)), 'candidates', now);
  b.addRemoteCandidates(1, undefined, a.localCandidates(1, 1).map((c) => serializeCandidate(c)), 'candidate', now);
  for (let step = 0; step < 200 && (a.componentState(1, 1) !== 'ready' || b.componentState(1, 1) !== 'ready'); step++) {
    const next = queue.shift();
    if (next) next.to.receive(next.id, next.from, next.data, now);
    else now = Math.max(now + 1, Math.min(a.nextTimeout(), b.nextTimeout()));
    for (const core of [a, b]) if (core.nextTimeout() <= now) core.handleTimeout(now);
    a.takeEvents();
    b.takeEvents();
  }
  a.send(1, 1, Buffer.from([0x80]), now);
  a.close(now);
  b.close(now);
}
