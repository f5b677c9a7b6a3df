/**
 * ICE-TCP where UDP is blocked, on the NAT rig of spec/support/netns.ts:
 * an iptables rule in both NATs drops every UDP datagram between the sides
 * (`blockUdp`); host A sits behind a 1:1 NAT (`addStaticNat`), so its
 * passive TCP candidate — announced on the public address (`--announce`) —
 * is reachable; host B is behind an ordinary MASQUERADE NAT, so only B can
 * open a connection. Both CLI peers offer UDP and TCP (`--tcp`): the UDP
 * pairs die at the firewall and the session connects over TCP, B's active
 * candidate (seen through NAT B) to A's passive one, in both roles. Needs root.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { addStaticNat, blockUdp, cleanupStale, createNatRig, netnsAvailable } from './support/netns.js';
import { runPair, firstOf } from '../examples/relay.js';
import { parseCandidate } from '../lib/index.js';

const PEER = fileURLToPath(new URL('../dist/examples/peer.js', import.meta.url));
const COUNT = 300;

t.setTimeout(180_000);

t.before(async () => {
  if (!existsSync(PEER)) throw new Error(`${PEER} is missing: run npm install (the prepare script builds dist/)`);
  await cleanupStale();
  const av = await netnsAvailable();
  if (!av.ok) throw new Error(`network namespaces are needed for the NAT tests: ${av.reason}`);
});

for (const aRole of ['controlling', 'controlled'] as const) {
  t.test(`UDP blocked, A's passive TCP candidate reachable: the session connects over TCP (A ${aRole})`, async (t) => {
    const rig = await createNatRig({ natA: 'eim', natB: 'eim' });
    t.teardown(() => rig.destroy());
    const nat = await addStaticNat(rig);
    const udpDropped = await blockUdp(rig);
    const common = [PEER, '--count', String(COUNT), '--size', '200', '--timeout', '25', '--tcp'];
    const bRole = aRole === 'controlling' ? 'controlled' : 'controlling';
    const run = await runPair({
      a: { cmd: 'ip', args: ['netns', 'exec', rig.hostA, process.execPath, ...common, '--role', aRole, '--host', nat.privateAddress, '--announce', nat.publicAddress] },
      b: { cmd: 'ip', args: ['netns', 'exec', rig.hostB, process.execPath, ...common, '--role', bRole, '--host', rig.hostBAddress] },
      timeoutMs: 60_000,
    });
    const diag = { a: run.a.stderr.slice(-2000), b: run.b.stderr.slice(-2000) };
    const offered = ((firstOf(run.a, 'description')?.candidates as string[]) ?? []).map((c) => parseCandidate(c));
    t.ok(offered.some((c) => c.transport === 'udp') && offered.some((c) => c.transport === 'tcp'), 'A offered UDP and TCP candidates');
    t.ok(offered.filter((c) => c.transport === 'tcp').every((c) => c.address === nat.publicAddress), `A's TCP candidates carry the public address ${nat.publicAddress}`);
    const a = firstOf(run.a, 'connected');
    const b = firstOf(run.b, 'connected');
    t.ok(a && b, 'both connected', diag);
    const [al, ar, bl, br] = [a?.local, a?.remote, b?.local, b?.remote].map((s) => parseCandidate(String(s)));
    t.same([al!.transport, al!.tcpType], ['tcp', 'passive'], 'A: its passive candidate', diag);
    t.same([ar!.type, ar!.tcpType, ar!.address], ['prflx', 'active', rig.natBOutside], 'A: B\'s connection, from NAT B\'s address, learned as peer-reflexive');
    // B is behind NAT B: its check's mapped address is NAT B's, so its valid pair has a local peer-reflexive candidate (§7.2.5.3.1).
    t.same([bl!.transport, bl!.tcpType, bl!.type, bl!.address], ['tcp', 'active', 'prflx', rig.natBOutside], 'B: its active candidate, as NAT B maps it');
    t.same([br!.address, br!.port, br!.tcpType], [nat.publicAddress, al!.port, 'passive'], 'B: A\'s announced passive candidate');
    const controlling = aRole === 'controlling' ? run.a : run.b;
    const done = firstOf(controlling, 'done');
    t.ok(done, 'the data phase finished', diag);
    t.ok(Number(done?.echoed) >= COUNT * 0.99, `at least 99% of ${COUNT} echoed over TCP (got ${done?.echoed})`, diag);
    t.equal(run.a.code, 0, 'A exits 0', diag);
    t.equal(run.b.code, 0, 'B exits 0', diag);
    t.ok(await udpDropped() > 0, `the firewall dropped the UDP checks (${await udpDropped()} datagrams)`);
    // About 1 s: neither side's valid pair is host-host (one end is peer-reflexive), and UDP pairs of higher
    // priority are still being retried, so regular nomination waits nominationTimeout (lib/core/nomination.ts).
    t.comment(`connected: A ${a?.ms} ms, B ${b?.ms} ms`);
  });
}
