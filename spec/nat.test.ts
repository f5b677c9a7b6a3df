/**
 * Two CLI peers on different private networks, each behind its own NAT, with
 * a real coturn on the "public" network (spec/support/netns.ts): they connect
 * through server-reflexive candidates where the NATs allow it (endpoint-
 * independent mapping) and through the TURN relay where they do not
 * (symmetric mapping). Only the documentation ranges are used, inside
 * namespaces this test creates and always deletes.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { createNatRig, cleanupStale, netnsAvailable, type NatBehaviour, type NatRig, type TurnServer } from './support/netns.js';
import { runPair, firstOf, type RunResult } from '../examples/relay.js';
import { parseCandidate, type Candidate } from '../lib/index.js';

const PEER = fileURLToPath(new URL('../dist/examples/peer.js', import.meta.url));
const COUNT = 300;

t.setTimeout(240_000);

t.before(async () => {
  if (!existsSync(PEER)) throw new Error(`${PEER} is missing: run npm install (the prepare script builds dist/)`);
  await cleanupStale();
  const av = await netnsAvailable();
  if (!av.ok) throw new Error(`network namespaces are needed for the NAT tests: ${av.reason}`);
});

async function session(t: any, natA: NatBehaviour, natB: NatBehaviour, nomination = 'regular') {
  const rig: NatRig = await createNatRig({ natA, natB });
  t.teardown(() => rig.destroy());
  // As production TURN servers are set up: private (here: the LANs') addresses
  // are refused as peers, so no relayed packet is aimed at an unroutable LAN.
  const turn: TurnServer = await rig.startTurnServer({ extraArgs: ['--verbose', '--denied-peer-ip=198.51.100.0-198.51.100.255'] });
  const server = `${turn.address}:${turn.port}`;
  const common = [
    PEER, '--count', String(COUNT), '--size', '200', '--nomination', nomination, '--timeout', '20',
    '--stun', server, '--turn', server, '--turn-user', turn.user, '--turn-pass', turn.password,
  ];
  const run: RunResult = await runPair({
    a: { cmd: 'ip', args: ['netns', 'exec', rig.hostA, process.execPath, ...common, '--role', 'controlling', '--host', rig.hostAAddress] },
    b: { cmd: 'ip', args: ['netns', 'exec', rig.hostB, process.execPath, ...common, '--role', 'controlled', '--host', rig.hostBAddress] },
    timeoutMs: 60_000,
  });
  const diag = { a: run.a.stderr.slice(-2000), b: run.b.stderr.slice(-2000), coturn: turn.log().slice(-2000) };
  const candidates = (side: 'a' | 'b'): Candidate[] =>
    ((firstOf(run[side], 'description')?.candidates as string[]) ?? []).map((c) => parseCandidate(c));
  const connected = (side: 'a' | 'b') => {
    const m = firstOf(run[side], 'connected');
    return m ? { local: parseCandidate(m.local as string), remote: parseCandidate(m.remote as string) } : undefined;
  };
  return { rig, turn, run, diag, candidates, connected };
}

function checkData(t: any, s: Awaited<ReturnType<typeof session>>) {
  const done = firstOf(s.run.a, 'done');
  t.ok(done, 'the controlling peer finished the data phase', s.diag);
  t.ok(Number(done?.echoed) >= COUNT * 0.99, `at least 99% of ${COUNT} datagrams echoed (got ${done?.echoed})`, s.diag);
  t.equal(s.run.a.code, 0, 'controlling peer exit 0', s.diag);
  t.equal(s.run.b.code, 0, 'controlled peer exit 0', s.diag);
}

t.test('EIM NAT on both sides: srflx candidates are the NATs\' outside addresses, and the peers connect without the relay', async (t) => {
  const s = await session(t, 'eim', 'eim');
  const srflxA = s.candidates('a').filter((c) => c.type === 'srflx');
  const srflxB = s.candidates('b').filter((c) => c.type === 'srflx');
  t.same(srflxA.map((c) => c.address), [s.rig.natAOutside], 'A\'s srflx address is NAT A\'s outside address', s.diag);
  t.same(srflxB.map((c) => c.address), [s.rig.natBOutside], 'B\'s srflx address is NAT B\'s outside address');
  t.equal(srflxA[0]?.relatedAddress, s.rig.hostAAddress, 'related address is the host base');
  t.ok(s.candidates('a').some((c) => c.type === 'relay'), 'a relayed candidate was gathered too');
  const a = s.connected('a');
  const b = s.connected('b');
  t.ok(a && b, 'both connected', s.diag);
  t.not(a!.local.type, 'relay', 'A does not use the relay');
  t.not(a!.remote.type, 'relay');
  t.equal(a!.remote.address, s.rig.natBOutside, 'A talks to B\'s NAT mapping');
  t.equal(b!.remote.address, s.rig.natAOutside, 'B talks to A\'s NAT mapping');
  t.equal(a!.local.address, b!.remote.address, 'the selected pairs agree');
  t.equal(a!.local.port, b!.remote.port);
  checkData(t, s);
});

t.test('symmetric NAT on both sides: only the relay connects them, and data flows through coturn', async (t) => {
  const s = await session(t, 'symmetric', 'symmetric');
  const a = s.connected('a');
  const b = s.connected('b');
  t.ok(a && b, 'both connected', s.diag);
  t.ok(a!.local.type === 'relay' || a!.remote.type === 'relay', `A's selected pair uses the relay (${a!.local.type} -> ${a!.remote.type})`, s.diag);
  t.ok(b!.local.type === 'relay' || b!.remote.type === 'relay', `B's selected pair uses the relay (${b!.local.type} -> ${b!.remote.type})`);
  const relayEnd = a!.local.type === 'relay' ? a!.local : a!.remote;
  t.equal(relayEnd.address, s.turn.address, 'the relayed address is coturn\'s');
  checkData(t, s);
  t.match(s.turn.log(), /CHANNEL_BIND processed, success/, 'coturn bound a channel for the data path (ChannelData, RFC 8656 §12)');
});
