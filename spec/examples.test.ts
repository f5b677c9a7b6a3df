/**
 * The examples, run as users run them: the compiled CLI peer (dist/examples/peer.js)
 * paired with itself through the line-protocol relay, the in-process basic
 * example, and the peer's argument and exit-code contract.
 *
 * These tests run compiled JavaScript: build first with `npx tsc -p tsconfig.json`.
 */
import t, { type Test } from 'tap';
import { staleBuild, tail } from './support/build.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseCandidate } from '../lib/index.js';
import { runPair, firstOf, type PeerResult, type PeerMessage, type RunResult } from '../examples/relay.js';
import { startCoturn } from './support/coturn.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER = join(ROOT, 'dist/examples/peer.js');
const BASIC = join(ROOT, 'dist/examples/basic.js');
const COUNT = 1000;
const WINDOW = 32;
/** The protocol's data phase must survive loopback almost untouched. */
const MIN_ECHOED = 990;



/** Runs one peer alone; `stdin: 'close'` gives it EOF at once, `'open'` leaves it open until it exits. */
function runAlone(args: string[], stdin: 'close' | 'open', timeoutMs = 15_000):
Promise<{ code: number | null; messages: PeerMessage[]; lines: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [PEER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    createInterface({ input: p.stdout }).on('line', (l) => lines.push(l));
    if (stdin === 'close') p.stdin.end();
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`peer ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${tail(stderr)}`));
    }, timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      p.stdin.destroy();
      const messages = lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as PeerMessage];
        } catch {
          return [];
        }
      });
      resolve({ code, messages, lines, stderr });
    });
  });
}

/** Everything a finished ice-agent ↔ ice-agent run must satisfy. */
function checkRun(t: Test, run: RunResult, trickle: boolean): void {
  const diag = { controllingStderr: tail(run.a.stderr), controlledStderr: tail(run.b.stderr), closedBecause: run.closedBecause };
  t.notOk(run.timedOut, 'the relay did not have to kill the peers', diag);
  const sides: Array<[string, PeerResult]> = [['controlling', run.a], ['controlled', run.b]];
  for (const [name, r] of sides) {
    t.same(r.messages.filter((m) => m.type === 'error'), [], `${name}: no error message`, diag);
    t.same(r.invalid, [], `${name}: stdout holds JSON messages only`);
    t.equal(r.code, 0, `${name} exits 0`, diag);
    const types = r.messages.map((m) => m.type);
    if (trickle) {
      t.equal(types[0], 'credentials', `${name}: credentials come first`);
      t.ok(types.includes('candidate'), `${name}: trickles at least one candidate`);
      t.ok(types.indexOf('end-of-candidates') > types.lastIndexOf('candidate'), `${name}: end-of-candidates after the candidates`);
      t.notOk(types.includes('description'), `${name}: no description with --trickle`);
    } else {
      t.equal(types[0], 'description', `${name}: the description comes first`);
      t.ok((firstOf(r, 'description')?.candidates as unknown[] | undefined)?.length, `${name}: the description has candidates`);
      t.notOk(types.some((x) => x === 'credentials' || x === 'candidate' || x === 'end-of-candidates'), `${name}: nothing trickled`);
    }
    t.equal(types.filter((x) => x === 'connected').length, 1, `${name}: connected exactly once`, diag);
  }
  const ca = firstOf(run.a, 'connected');
  const cb = firstOf(run.b, 'connected');
  if (ca && cb) {
    const [al, ar, bl, br] = [ca.local, ca.remote, cb.local, cb.remote].map((c) => parseCandidate(String(c)));
    t.same([al!.address, al!.port], [br!.address, br!.port], 'controlling local = controlled remote');
    t.same([bl!.address, bl!.port], [ar!.address, ar!.port], 'controlled local = controlling remote');
    t.equal(al!.address, '127.0.0.1', 'the pair is on loopback');
    t.type(ca.ms, 'number');
    t.type(cb.ms, 'number');
  }
  const done = firstOf(run.a, 'done');
  t.ok(done, 'the controlling side wrote done', diag);
  t.notOk(firstOf(run.b, 'done'), 'the controlled side writes no done');
  if (done) {
    t.equal(done.sent, COUNT, `sent ${COUNT}`);
    t.ok(Number(done.echoed) >= MIN_ECHOED, `at least ${MIN_ECHOED} of ${COUNT} echoed (got ${done.echoed})`, diag);
    t.ok(Number(done.echoed) <= COUNT, 'no more echoes than datagrams');
  }
  t.comment(`connected after ${ca?.ms} ms (controlling) / ${cb?.ms} ms (controlled); ` +
    `data phase ${done?.echoed}/${done?.sent} echoed in ${done?.ms} ms; whole run ${run.ms} ms`);
}

if (!existsSync(PEER)) {
  t.fail(`${relative(ROOT, PEER)} is missing: these tests run the compiled examples; build them with \`npx tsc -p tsconfig.json\``);
} else {
  t.test('the build is up to date', async (t) => {
    const stale = staleBuild();
    t.same(stale, [], stale.length
      ? `dist/ is older than ${stale.join(', ')}: rebuild with \`npx tsc -p tsconfig.json\``
      : 'dist/ is newer than every source in lib/ and examples/');
  });

  // Four pair runs that may each, when something is wrong, take their whole budget.
  t.setTimeout(8 * 24_000 + 60_000);

  for (const lite of [false, true]) for (const nomination of ['regular', 'aggressive'] as const) {
    for (const trickle of [false, true]) {
      t.test(`ice-agent <-> ice-agent${lite ? ' (lite, controlled)' : ''}, ${nomination} nomination, trickle ${trickle ? 'on' : 'off'}`, async (t) => {
        const common = ['--host', '127.0.0.1', '--nomination', nomination, '--count', String(COUNT),
          '--window', String(WINDOW), '--timeout', '10', ...(trickle ? ['--trickle'] : [])];
        const run = await runPair({
          a: { cmd: process.execPath, args: [PEER, '--role', 'controlling', ...common] },
          b: { cmd: process.execPath, args: [PEER, '--role', 'controlled', ...(lite ? ['--lite'] : []), ...common] },
          timeoutMs: 20_000,
        });
        checkRun(t, run, trickle);
      });
    }
  }

  t.test('examples/basic runs and exits 0', async (t) => {
    const r = spawnSync(process.execPath, [BASIC], { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 0, 'exit code 0', { stderr: r.stderr, signal: r.signal });
    t.match(r.stdout, /^ready: 127\.0\.0\.1:\d+ <-> 127\.0\.0\.1:\d+$/m, 'reports the selected pair');
    t.match(r.stdout, /bob got: hello from alice/, 'alice -> bob');
    t.match(r.stdout, /alice got: hello from bob/, 'bob -> alice');
  });

  const badArgs: string[][] = [
    [],
    ['--role', 'observer'],
    ['--role', 'controlling', '--count', 'ten'],
    ['--role', 'controlling', '--size', '4'],
    ['--role', 'controlling', '--window', '0'],
    ['--role', 'controlling', '--host', 'localhost'],
    ['--role', 'controlling', '--stun', 'stun.example.org'],
    ['--role', 'controlling', '--turn', '127.0.0.1:3478'],
    ['--role', 'controlling', '--turn-user', 'u'],
    ['--role', 'controlling', '--nomination', 'eager'],
    ['--role', 'controlling', '--timeout', '-1'],
    ['--role', 'controlling', '--bogus'],
    ['--role', 'controlling', '--lite'],
    ['--role', 'controlled', '--announce', '203.0.113.7'],
    ['--role', 'controlled', '--host', '127.0.0.1', '--announce', 'nowhere'],
    ['--role', 'controlling', 'extra'],
  ];
  // Started together when the first of these tests runs: each is a node start-up, and they are independent.
  let badRuns: Array<ReturnType<typeof runAlone>> | undefined;
  const badRun = (i: number) => {
    badRuns ??= badArgs.map((args) => {
      // Many node start-ups at once on a loaded 2-core machine: give them time.
      const p = runAlone(args, 'close', 60_000);
      p.catch(() => {}); // awaited (and reported) by its own test
      return p;
    });
    return badRuns[i]!;
  };
  badArgs.forEach((args, i) => {
    t.test(`bad arguments: ${args.join(' ') || '(none)'}`, async (t) => {
      const r = await badRun(i);
      t.equal(r.code, 2, 'exit code 2', { stderr: r.stderr });
      t.equal(r.lines.length, 1, 'one line on stdout');
      t.equal(r.messages[0]?.type, 'error', 'an error message');
      t.type(r.messages[0]?.message, 'string', 'with a reason');
    });
  });

  t.test('--help prints the usage on stdout and exits 0 (peer-protocol.md)', async (t) => {
    const r = await runAlone(['--help'], 'close');
    t.equal(r.code, 0);
    t.match(r.lines.join('\n'), /^usage: ice-agent-peer/, 'the usage, on stdout');
    for (const flag of ['--lite', '--announce', '--nomination', '--trickle']) t.match(r.lines.join('\n'), flag, `mentions ${flag}`);
  });

  t.test('--announce puts the announced address in the host candidate (and --lite gathers host candidates only)', async (t) => {
    const r = await runAlone(['--role', 'controlled', '--host', '127.0.0.1', '--announce', '203.0.113.7', '--lite', '--stun', '127.0.0.1:9'], 'close');
    const desc = r.messages.find((m) => m.type === 'description');
    t.ok(desc, 'a description', { stderr: r.stderr });
    const cands = (desc?.candidates as string[] | undefined) ?? [];
    t.ok(cands.length > 0 && cands.every((c) => / 203\.0\.113\.7 \d+ typ host/.test(c)), `announced host candidates only: ${cands.join(', ')}`);
  });

  t.test('--stun and --turn gather through a real coturn: a relayed candidate in the description', async (t) => {
    const turn = await startCoturn();
    t.teardown(() => turn.stop());
    const r = await runAlone(['--role', 'controlled', '--host', '127.0.0.1', '--stun', `127.0.0.1:${turn.port}`,
      '--turn', `127.0.0.1:${turn.port}`, '--turn-user', turn.username, '--turn-pass', turn.password, '--timeout', '2'], 'open');
    const desc = r.messages[0] as { type: string; candidates: string[] };
    t.equal(desc?.type, 'description', 'one description once gathering is done');
    t.ok(desc.candidates.some((c) => / typ host/.test(c)), 'a host candidate');
    t.ok(desc.candidates.some((c) => / typ relay raddr 127\.0\.0\.1 rport \d+/.test(c)), 'a relayed candidate from coturn');
    t.match(r.messages.at(-1)?.message, /not connected after 2 s/, 'nobody answers: the peer gives up');
    t.equal(r.code, 1, 'and exits 1');
  });

  t.test('--timeout without a connection: error and exit 1', async (t) => {
    const r = await runAlone(['--role', 'controlling', '--host', '127.0.0.1', '--trickle', '--timeout', '0.3'], 'open');
    t.same(r.messages.map((m) => m.type), ['credentials', 'candidate', 'end-of-candidates', 'error'], 'trickles, then gives up');
    t.match(r.messages.at(-1)?.message, /not connected after 0\.3 s/);
    t.equal(r.code, 1, 'exit code 1');
  });
}
