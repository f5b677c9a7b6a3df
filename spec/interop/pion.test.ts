/**
 * Interop with pion/ice: the compiled ice-agent peer (dist/examples/peer.js)
 * against spec/interop/pion-peer (pion/ice v2 from Debian's Go sources, built
 * on first use by spec/support/pion.ts), both speaking the line protocol of
 * peer-protocol.md over 127.0.0.1, and pion against pion once as the reference.
 *
 * pion/ice v2 nominates the regular way only when it is the controlling agent,
 * so its peer refuses `--role controlling --nomination aggressive` (exit 2, as
 * the protocol says for a feature a peer does not have); the combinations are
 * ours controlling × {regular, aggressive} and ours controlled × regular, each
 * with trickle off and on, and the refusal is checked on its own.
 *
 * Needs Go and pion's sources (Debian: golang-go, golang-github-pion-ice.v2-dev;
 * .ci/run installs them): skipped without them outside CI, a failure in CI.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleBuild, tail } from '../support/build.js';
import { pionPeer, PION_DEBS } from '../support/pion.js';
import { parseCandidate } from '../../lib/index.js';
import { runPair, firstOf, type PeerResult, type RunResult } from '../../examples/relay.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PEER = join(ROOT, 'dist/examples/peer.js');
const COUNT = 1000;
/** Datagrams in flight: the protocol's default (both peers start with one until the first echo). */
const WINDOW = 32;
const MIN_ECHOED = 990;
/** Seconds each peer may take to connect; the relay's own limit is a little longer. */
const CONNECT_TIMEOUT_S = 10;
const inCI = Boolean(process.env.CI);

type Impl = 'ice-agent' | 'pion';

interface Run {
  controlling: Impl;
  controlled: Impl;
  nomination: 'regular' | 'aggressive';
  trickle: boolean;
  /** Our controlled side is an ICE-lite agent (`--lite`): a media server that pion clients join. */
  lite?: boolean;
}

function check(t: Test, run: RunResult, c: Run): void {
  // runPair's a is always the controlling side here.
  const sides: Array<[string, PeerResult]> = [[`${c.controlling} (controlling)`, run.a], [`${c.controlled} (controlled)`, run.b]];
  const diag = {
    closedBecause: run.closedBecause,
    controllingStderr: tail(run.a.stderr),
    controlledStderr: tail(run.b.stderr),
  };
  t.notOk(run.timedOut, 'the relay did not have to kill the peers', diag);
  for (const [name, r] of sides) {
    t.same(r.messages.filter((m) => m.type === 'error'), [], `${name}: no error message`, diag);
    t.equal(r.code, 0, `${name} exits 0`, diag);
    t.same(r.invalid, [], `${name}: stdout holds JSON messages only`);
    t.equal(r.messages[0]?.type, c.trickle ? 'credentials' : 'description', `${name}: the right first message`);
    t.equal(r.messages.filter((m) => m.type === 'connected').length, 1, `${name}: connected exactly once`, diag);
    if (c.trickle) t.ok(firstOf(r, 'end-of-candidates'), `${name}: end-of-candidates`);
  }

  const ca = firstOf(run.a, 'connected');
  const cb = firstOf(run.b, 'connected');
  if (ca && cb) {
    const [al, ar, bl, br] = [ca.local, ca.remote, cb.local, cb.remote].map((s) => parseCandidate(String(s)));
    t.same([al!.address, al!.port], [br!.address, br!.port], 'controlling local = controlled remote');
    t.same([bl!.address, bl!.port], [ar!.address, ar!.port], 'controlled local = controlling remote');
    t.equal(al!.address, '127.0.0.1', 'the selected pair is on 127.0.0.1');
    t.equal(bl!.address, '127.0.0.1', 'the selected pair is on 127.0.0.1 (controlled side)');
  }

  const done = firstOf(run.a, 'done');
  t.ok(done, `the controlling side (${c.controlling}) wrote done`, diag);
  if (done) {
    const echoed = Number(done.echoed);
    t.equal(done.sent, COUNT, `sent ${COUNT}`);
    t.ok(echoed >= MIN_ECHOED, `at least ${MIN_ECHOED} of ${COUNT} echoed (got ${echoed})`, diag);
  }
  t.comment(`connected.ms: ${c.controlling} (controlling) ${ca?.ms} ms, ${c.controlled} (controlled) ${cb?.ms} ms; ` +
    `data ${done?.echoed}/${done?.sent} echoed in ${done?.ms} ms; run ${run.ms} ms`);
}

// Every run may, when something is wrong, take its whole budget (peer timeout,
// relay timeout, kill grace); the build of the pion peer comes first (about 20 s
// from a cold Go cache on two cores).
t.setTimeout(10 * (CONNECT_TIMEOUT_S + 8) * 1000 + 300_000);

const missingBuild = !existsSync(PEER);
const pion = missingBuild ? undefined : await pionPeer();
if (missingBuild) {
  t.fail(`${relative(ROOT, PEER)} is missing: the interop tests run the compiled peer; build it with \`npx tsc -p tsconfig.json\``);
} else if (!pion!.ok && pion!.missing && !inCI) {
  t.test('ice-agent <-> pion', { skip: `pion is missing: ${pion!.reason}` }, async () => {});
} else if (!pion!.ok) {
  t.fail(pion!.missing
    ? `pion is missing in CI: ${pion!.reason}. .ci/run must install ${PION_DEBS}`
    : `the pion peer does not build: ${pion!.reason}`);
} else {
  const PION = pion!.path;
  t.comment(`pion peer: ${PION} (${pion!.built ? 'built now' : 'cached'}; ${pion!.goVersion})`);
  const spec = (impl: Impl, role: 'controlling' | 'controlled', common: string[]) => impl === 'pion'
    ? { cmd: PION, args: ['--role', role, ...common] }
    : { cmd: process.execPath, args: [PEER, '--role', role, ...common] };

  t.test('the build is up to date', async (t) => {
    const stale = staleBuild();
    t.same(stale, [], stale.length
      ? `dist/ is older than ${stale.join(', ')}: rebuild with \`npx tsc -p tsconfig.json\``
      : 'dist/ is newer than every source in lib/ and examples/');
  });

  t.test('the pion peer refuses what pion/ice v2 cannot do, with exit code 2 and an error naming the argument', async (t) => {
    const refused: Array<[string[], string]> = [
      [['--role', 'controlling', '--nomination', 'aggressive'], '--nomination'],
      [['--role', 'controlled', '--lite'], '--lite'],
      [['--role', 'controlled', '--tcp'], '--tcp'],
      [['--role', 'controlling', '--dtls-psk', 'alice:00112233'], '--dtls-psk'],
      [['--role', 'controlled', '--forward', '127.0.0.1:5684'], '--forward'],
      [['--role', 'controlled', '--session-file', '/nonexistent/x'], '--session-file'],
      [['--role', 'controlled', '--no-such-flag'], '--no-such-flag'],
    ];
    for (const [args, name] of refused) {
      const r = spawnSync(PION, [...args, '--host', '127.0.0.1'], { encoding: 'utf8', input: '', timeout: 30_000 });
      const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      t.equal(r.status, 2, `${args.join(' ')}: exit code 2`, { stderr: r.stderr });
      t.equal(lines.length, 1, `${args.join(' ')}: one message`);
      t.equal(lines[0]?.type, 'error', `${args.join(' ')}: an error message`);
      t.match(String(lines[0]?.message), name, `${args.join(' ')}: the error names ${name}`);
    }
    const help = spawnSync(PION, ['--help'], { encoding: 'utf8', timeout: 30_000 });
    t.equal(help.status, 0, '--help exits 0');
    t.match(help.stdout, /^usage: pion-peer --role/, '--help prints the usage on stdout');
  });

  // Sequential on purpose (tap runs subtests of one file in order): timing-sensitive, and easier to read.
  const runs: Run[] = [];
  for (const nomination of ['regular', 'aggressive'] as const) {
    for (const trickle of [false, true]) runs.push({ controlling: 'ice-agent', controlled: 'pion', nomination, trickle });
  }
  for (const trickle of [false, true]) runs.push({ controlling: 'pion', controlled: 'ice-agent', nomination: 'regular', trickle });
  for (const trickle of [false, true]) runs.push({ controlling: 'pion', controlled: 'ice-agent', nomination: 'regular', trickle, lite: true });
  runs.push({ controlling: 'pion', controlled: 'pion', nomination: 'regular', trickle: false });

  for (const c of runs) {
    const title = c.controlling === c.controlled
      ? `pion controlling <-> pion controlled (reference), ${c.nomination} nomination, trickle ${c.trickle ? 'on' : 'off'}`
      : `ice-agent ${c.controlling === 'ice-agent' ? 'controlling' : c.lite ? 'controlled, lite' : 'controlled'} <-> pion ${c.controlling === 'pion' ? 'controlling' : 'controlled'}, ` +
        `${c.nomination} nomination, trickle ${c.trickle ? 'on' : 'off'}`;
    t.test(title, async (t) => {
      const common = ['--host', '127.0.0.1', '--nomination', c.nomination, '--count', String(COUNT), '--window', String(WINDOW),
        '--timeout', String(CONNECT_TIMEOUT_S), ...(c.trickle ? ['--trickle'] : [])];
      const run = await runPair({
        a: spec(c.controlling, 'controlling', common),
        b: spec(c.controlled, 'controlled', [...common, ...(c.lite ? ['--lite'] : [])]),
        timeoutMs: (CONNECT_TIMEOUT_S + 4) * 1000,
      });
      check(t, run, c);
    });
  }
}
