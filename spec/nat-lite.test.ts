/**
 * An ICE-lite media server behind a static 1:1 NAT (a cloud VM's public IP):
 * our CLI peer with `--lite`, bound on its private address (`--host`) and
 * announcing the public one (`--announce`), on the NAT rig of
 * spec/support/netns.ts with NAT A turned into a 1:1 NAT (`addStaticNat`).
 * A full agent on the public network — libnice (spec/interop/libnice-peer.py)
 * and ours, controlling — must connect to the announced host candidate
 * itself: the check goes to the public address, the NAT forwards it, the
 * answer comes back from that same address and port, so the remote side's
 * selected remote candidate is the announced `typ host` one, not a
 * peer-reflexive candidate learned from a surprising source.
 *
 * Needs root (network namespaces, iptables) and libnice's GObject bindings;
 * without them the tests fail with the reason. Runs the compiled peer
 * (`npx tsc -p tsconfig.json`).
 */
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { addStaticNat, cleanupStale, createNatRig, netnsAvailable, type NatRig, type StaticNat } from './support/netns.js';
import { runPair, firstOf, type RunResult } from '../examples/relay.js';
import { parseCandidate, type Candidate } from '../lib/index.js';

const PEER = fileURLToPath(new URL('../dist/examples/peer.js', import.meta.url));
const LIBNICE_PEER = fileURLToPath(new URL('./interop/libnice-peer.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const COUNT = 300;

t.setTimeout(240_000);

/** One rig for every run in this file (building one takes seconds); the runs use fresh ports, and it is torn down at the end. */
let rig: NatRig;
let nat: StaticNat;

t.before(async () => {
  if (!existsSync(PEER)) throw new Error(`${PEER} is missing: build with \`npx tsc -p tsconfig.json\``);
  await cleanupStale();
  const av = await netnsAvailable();
  if (!av.ok) throw new Error(`network namespaces are needed for the NAT tests: ${av.reason}`);
  const gi = spawnSync(PYTHON, ['-c', 'import gi; gi.require_version("Nice","0.1"); from gi.repository import Nice'], { encoding: 'utf8', timeout: 30_000 });
  if (gi.status !== 0) throw new Error(`libnice's GObject bindings are needed (python3-gi, gir1.2-nice-0.1): ${gi.error?.message ?? gi.stderr}`);
  rig = await createNatRig({ natA: 'eim', natB: 'eim' });
  nat = await addStaticNat(rig);
});

t.teardown(() => rig?.destroy());

/** The `agent stats` JSON our CLI peer prints on stderr with --verbose as it exits: its remote candidates' types. */
function remoteCandidateTypes(stderr: string): string[] | undefined {
  const m = /^ice-agent-peer\S*: agent stats (\{.*\})$/m.exec(stderr);
  if (!m) return undefined;
  const comp = JSON.parse(m[1]!).streams?.[0]?.components?.[0];
  return comp?.remoteCandidates?.map((c: { candidateType: string; address: string }) => `${c.candidateType} ${c.address}`);
}

async function session(full: 'libnice' | 'ice-agent', nomination: 'regular' | 'aggressive') {
  const common = ['--count', String(COUNT), '--size', '200', '--nomination', nomination, '--timeout', '15'];
  const fullArgs = full === 'libnice'
    ? [PYTHON, LIBNICE_PEER, '--role', 'controlling', '--host', rig.publicServer, ...common]
    : [process.execPath, PEER, '--role', 'controlling', '--host', rig.publicServer, '--verbose', ...common];
  const run: RunResult = await runPair({
    a: { cmd: 'ip', args: ['netns', 'exec', rig.public, ...fullArgs] },
    b: {
      cmd: 'ip',
      args: ['netns', 'exec', rig.hostA, process.execPath, PEER, '--role', 'controlled', '--lite',
        '--host', nat.privateAddress, '--announce', nat.publicAddress, '--verbose', ...common],
    },
    timeoutMs: 40_000,
  });
  const diag = { full: run.a.stderr.split('\n').filter((l) => !l.includes('agent stats')).slice(-25).join('\n'), lite: run.b.stderr.split('\n').filter((l) => !l.includes('agent stats')).slice(-25).join('\n'), closedBecause: run.closedBecause };
  const connected = (side: 'a' | 'b') => {
    const m = firstOf(run[side], 'connected');
    return m ? { local: parseCandidate(m.local as string), remote: parseCandidate(m.remote as string) } : undefined;
  };
  const liteCandidates: Candidate[] = ((firstOf(run.b, 'description')?.candidates as string[]) ?? []).map((c) => parseCandidate(c));
  return { rig, nat, run, diag, connected, liteCandidates };
}

function checkLite(t: Test, s: Awaited<ReturnType<typeof session>>, full: string) {
  const { diag } = s;
  t.ok(s.liteCandidates.length > 0, 'the lite peer wrote a description', diag);
  t.same(s.liteCandidates.map((c) => `${c.type} ${c.address}`), s.liteCandidates.map(() => `host ${nat.publicAddress}`),
    `the lite peer announces host candidates on the public address ${nat.publicAddress} only (never ${nat.privateAddress})`);
  const a = s.connected('a');
  const b = s.connected('b');
  t.ok(a && b, 'both connected', diag);
  if (!a || !b) return;
  const announced = s.liteCandidates[0]!;
  t.equal(a.remote.type, 'host', `${full}'s selected remote candidate is a host candidate, not peer-reflexive (${a.remote.type})`, diag);
  t.same([a.remote.address, a.remote.port], [announced.address, announced.port], `${full}'s selected remote candidate is the announced ${announced.address}:${announced.port}`);
  t.same([a.local.address, a.local.type], [rig.publicServer, 'host'], `${full} sends from its own host candidate`);
  t.same([b.local.address, b.local.port, b.local.type], [announced.address, announced.port, 'host'], 'the lite side\'s selected local candidate is the announced one');
  t.same([b.remote.address, b.remote.port, b.remote.type], [a.local.address, a.local.port, 'host'], `the lite side sees ${full}'s host candidate as the source (no prflx)`);
  const types = remoteCandidateTypes(s.run.b.stderr);
  t.same(types, [`host ${rig.publicServer}`], 'the lite agent learned no peer-reflexive candidate');
  const done = firstOf(s.run.a, 'done');
  t.ok(done, `${full} finished the data phase`, diag);
  t.ok(Number(done?.echoed) >= COUNT * 0.99, `at least 99% of ${COUNT} datagrams echoed through the NAT (got ${done?.echoed})`, diag);
  t.equal(s.run.a.code, 0, `${full} exits 0`, diag);
  t.equal(s.run.b.code, 0, 'the lite peer exits 0', diag);
}

t.test('the 1:1 NAT: DNAT and SNAT of one public address, ports kept; the private range unreachable from outside', async (t) => {
  const rules = await rig.exec(rig.natA, 'iptables-save', []);
  t.match(rules, `-A PREROUTING -d ${nat.publicAddress}/32 -i wan -j DNAT --to-destination ${nat.privateAddress}`, 'DNAT of the public address');
  t.match(rules, `-A POSTROUTING -s ${nat.privateAddress}/32 -o wan -j SNAT --to-source ${nat.publicAddress}`, 'SNAT back to it');
  t.notMatch(rules, /MASQUERADE|--random/, 'no MASQUERADE, no port randomisation');
  await t.rejects(rig.exec(rig.public, 'ip', ['route', 'get', nat.privateAddress]), /unreachable/i, 'the public network has no route to the private address');
});

for (const nomination of ['regular', 'aggressive'] as const) {
  t.test(`libnice (controlling, ${nomination}) on the public network connects to our --lite agent behind a 1:1 NAT on its announced address`, async (t) => {
    checkLite(t, await session('libnice', nomination), 'libnice');
  });
  t.test(`our full agent (controlling, ${nomination}) on the public network connects to our --lite agent behind a 1:1 NAT on its announced address`, async (t) => {
    const s = await session('ice-agent', nomination);
    checkLite(t, s, 'ice-agent');
    t.same(remoteCandidateTypes(s.run.a.stderr), [`host ${s.nat.publicAddress}`], 'our full agent learned no peer-reflexive candidate either');
  });
}
