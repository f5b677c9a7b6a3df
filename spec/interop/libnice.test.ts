/**
 * Interop with libnice: the compiled ice-agent peer (dist/examples/peer.js)
 * against spec/interop/libnice-peer.py (libnice through GObject
 * introspection), both speaking the line protocol of peer-protocol.md over
 * loopback. Every combination of our role, the nomination mode and trickle,
 * one after the other.
 *
 * Needs the system Python with PyGObject and libnice's typelib (Debian:
 * python3-gi, gir1.2-nice-0.1; .ci/run installs them), and a build of the
 * examples (`npx tsc -p tsconfig.json`).
 */
import t, { type Test } from 'tap';
import { staleBuild, tail } from '../support/build.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCandidate } from '../../lib/index.js';
import { runPair, firstOf, type PeerResult, type RunResult } from '../../examples/relay.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PEER = join(ROOT, 'dist/examples/peer.js');
const LIBNICE_PEER = join(ROOT, 'spec/interop/libnice-peer.py');
const PYTHON = '/usr/bin/python3';
const COUNT = 1000;
/**
 * Datagrams in flight: the protocol's default. The peer starts its data phase
 * with one datagram in flight until the first echo (examples/peer.ts), which
 * covers the start-up race where a controlled libnice has no pair to send on
 * until its own triggered check succeeds (RFC 8445 §7.3.1.5).
 */
const WINDOW = 32;
const MIN_ECHOED = 990;
/** Seconds each peer may take to connect; the relay's own limit is a little longer. */
const CONNECT_TIMEOUT_S = 10;



function libniceProblem(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import gi; gi.require_version("Nice","0.1"); from gi.repository import Nice'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) return tail(r.stderr, 5);
  return undefined;
}

interface Combination {
  ours: 'controlling' | 'controlled';
  nomination: 'regular' | 'aggressive';
  trickle: boolean;
  /** Ours as an ICE-lite agent (`--lite`, controlled only). */
  lite: boolean;
}

function check(t: Test, run: RunResult, c: Combination): void {
  const diag = {
    closedBecause: run.closedBecause,
    iceAgentStderr: tail(run.a.stderr),
    libniceStderr: tail(run.b.stderr),
  };
  t.notOk(run.timedOut, 'the relay did not have to kill the peers', diag);
  const sides: Array<[string, PeerResult]> = [['ice-agent', run.a], ['libnice', run.b]];
  for (const [name, r] of sides) {
    t.same(r.messages.filter((m) => m.type === 'error'), [], `${name}: no error message`, diag);
    t.equal(r.code, 0, `${name} exits 0`, diag);
    t.equal(r.messages.filter((m) => m.type === 'connected').length, 1, `${name}: connected exactly once`, diag);
  }
  // libnice's own stdout may carry GLib debug lines (G_MESSAGES_DEBUG); ours must be clean.
  t.same(run.a.invalid, [], 'ice-agent: stdout holds JSON messages only');
  t.equal(run.a.messages[0]?.type, c.trickle ? 'credentials' : 'description', 'ice-agent: the right first message');

  const ours = firstOf(run.a, 'connected');
  const theirs = firstOf(run.b, 'connected');
  if (ours && theirs) {
    const [ol, or, tl, tr] = [ours.local, ours.remote, theirs.local, theirs.remote].map((s) => parseCandidate(String(s)));
    t.same([ol!.address, ol!.port], [tr!.address, tr!.port], 'ice-agent local = libnice remote');
    t.same([tl!.address, tl!.port], [or!.address, or!.port], 'libnice local = ice-agent remote');
  }

  const controlling = c.ours === 'controlling' ? run.a : run.b;
  const done = firstOf(controlling, 'done');
  t.ok(done, `the controlling side (${c.ours === 'controlling' ? 'ice-agent' : 'libnice'}) wrote done`, diag);
  if (done) {
    const echoed = Number(done.echoed);
    t.equal(done.sent, COUNT, `sent ${COUNT}`);
    t.ok(echoed >= MIN_ECHOED, `at least ${MIN_ECHOED} of ${COUNT} echoed (got ${echoed})`, diag);
  }
  t.comment(`connected: ice-agent ${ours?.ms} ms, libnice ${theirs?.ms} ms; ` +
    `data ${done?.echoed}/${done?.sent} echoed in ${done?.ms} ms; run ${run.ms} ms`);
}

const missingBuild = !existsSync(PEER);
const problem = missingBuild ? undefined : libniceProblem();
if (missingBuild) {
  t.fail(`${relative(ROOT, PEER)} is missing: the interop tests run the compiled peer; build it with \`npx tsc -p tsconfig.json\``);
} else if (problem !== undefined) {
  t.fail(`libnice is missing: ${PYTHON} cannot load the Nice 0.1 typelib through PyGObject. ` +
    `.ci/run installs gir1.2-nice-0.1 (with python3-gi); on Debian/Ubuntu: apt-get install python3-gi gir1.2-nice-0.1`,
  { error: problem });
} else {
  t.test('the build is up to date', async (t) => {
    const stale = staleBuild();
    t.same(stale, [], stale.length
      ? `dist/ is older than ${stale.join(', ')}: rebuild with \`npx tsc -p tsconfig.json\``
      : 'dist/ is newer than every source in lib/ and examples/');
  });

  // Sequential on purpose (tap runs subtests of one file in order): timing-sensitive, and easier to read.
  // Eight runs that may each, when something is wrong, take their whole budget (peer
  // timeout, relay timeout, kill grace): more than the default file timeout.
  t.setTimeout(12 * (CONNECT_TIMEOUT_S + 8) * 1000 + 30_000);
  for (const [ours, lite] of [['controlling', false], ['controlled', false], ['controlled', true]] as const) {
    for (const nomination of ['regular', 'aggressive'] as const) {
      for (const trickle of [false, true]) {
        const c: Combination = { ours, nomination, trickle, lite };
        const theirs = ours === 'controlling' ? 'controlled' : 'controlling';
        t.test(`ice-agent ${ours}${lite ? ' (lite)' : ''} <-> libnice ${theirs}, ${nomination} nomination, trickle ${trickle ? 'on' : 'off'}`, async (t) => {
          const common = ['--host', '127.0.0.1', '--nomination', nomination, '--count', String(COUNT), '--window', String(WINDOW),
            '--timeout', String(CONNECT_TIMEOUT_S), ...(trickle ? ['--trickle'] : [])];
          const run = await runPair({
            a: { cmd: process.execPath, args: [PEER, '--role', ours, ...(lite ? ['--lite'] : []), ...common] },
            b: { cmd: PYTHON, args: [LIBNICE_PEER, '--role', theirs, ...common] },
            timeoutMs: (CONNECT_TIMEOUT_S + 4) * 1000,
          });
          check(t, run, c);
        });
      }
    }
  }
}
