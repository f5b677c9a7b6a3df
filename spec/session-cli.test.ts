/**
 * Session continuity across processes: a CLI peer is killed with SIGKILL in
 * the middle of the data phase and started again with `--restore`; the other
 * side (libnice, or ours) goes on without an ICE restart or new signalling.
 */
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCoturn } from './support/coturn.js';
import { createWaiters } from './support/waiters.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER = join(ROOT, 'dist/examples/peer.js');
const LIBNICE_PEER = join(ROOT, 'spec/interop/libnice-peer.py');
const COUNT = 3000;
const WINDOW = 32;

interface Proc {
  child: ChildProcess;
  messages: Array<Record<string, unknown>>;
  stderr: string;
  /** Resolves with the first message of this type (already seen or future). */
  message(type: string, ms?: number): Promise<Record<string, unknown>>;
  stderrMatch(re: RegExp, ms?: number): Promise<void>;
  exited: Promise<number | null>;
}

function start(cmd: string, args: string[], onLine: (line: string) => void): Proc {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const p: Proc = {
    child, messages: [], stderr: '',
    message: (type, ms = 20_000) => waitFor(() => p.messages.find((m) => m.type === type), ms, `${type} from ${args.join(' ')}`),
    stderrMatch: async (re, ms = 20_000) => { await waitFor(() => (re.test(p.stderr) ? true : undefined), ms, `${re} on stderr`); },
    exited: new Promise((r) => child.on('exit', (code) => r(code))),
  };
  child.stdin!.on('error', () => {});
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { p.stderr += d; pulse(); });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      p.messages.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a protocol line
    }
    onLine(line);
    pulse();
  });
  child.on('exit', pulse);
  return p;
}

/** Waiters woken by any output of any process: no polling, no sleeping. */
const { pulse, waitFor } = createWaiters();

interface Scenario {
  /** The side that is killed and restored: ours, in this role. */
  restoredRole: 'controlling' | 'controlled';
  other: 'libnice' | 'ice-agent';
  turn?: { url: string; user: string; pass: string };
}

async function run(t: Test, sc: Scenario): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ice-session-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'session.json');
  const otherRole = sc.restoredRole === 'controlling' ? 'controlled' : 'controlling';
  const common = ['--host', '127.0.0.1', '--count', String(COUNT), '--window', String(WINDOW), '--timeout', '15'];
  const relay = sc.turn ? ['--turn', sc.turn.url, '--turn-user', sc.turn.user, '--turn-pass', sc.turn.pass, '--relay-only'] : [];
  let ours: Proc | undefined;
  const other = sc.other === 'libnice'
    ? start('/usr/bin/python3', [LIBNICE_PEER, '--role', otherRole, ...common], (l) => ours?.child.stdin!.write(`${l}\n`))
    : start(process.execPath, [PEER, '--role', otherRole, ...common, ...relay], (l) => ours?.child.stdin!.write(`${l}\n`));
  const first = start(process.execPath, [PEER, '--role', sc.restoredRole, ...common, ...relay, '--session-file', file],
    (l) => other.child.stdin!.write(`${l}\n`));
  ours = first;
  t.teardown(() => { for (const p of [first, other, ours]) p?.child.kill('SIGKILL'); });
  await first.message('connected');
  t.ok(existsSync(file), 'the session file is written once connected');
  // Half-way through the data phase: the controlled side has echoed some, or the controlling side is sending.
  if (sc.restoredRole === 'controlled') await first.stderrMatch(/echoed 500\b/);
  else await other.stderrMatch(sc.other === 'libnice' ? /./ : /echoed 500\b/);
  first.child.kill('SIGKILL');
  await first.exited;
  const killedAt = performance.now();
  const second = start(process.execPath, [PEER, '--role', sc.restoredRole, ...common, ...relay, '--session-file', file, '--restore'],
    (l) => other.child.stdin!.write(`${l}\n`));
  ours = second;
  const restored = await second.message('restored');
  const downMs = performance.now() - killedAt;
  t.type(restored.ms, 'number', `restored: data flowing ${restored.ms} ms after the new process started (${Math.round(downMs)} ms after the kill)`);
  t.notOk(second.messages.some((m) => m.type === 'description' || m.type === 'credentials'), 'no new signalling');
  const controlling = sc.restoredRole === 'controlling' ? second : other;
  const done = await controlling.message('done', 30_000);
  const echoed = Number(done.echoed);
  // Lost: what was in flight at the kill and what was sent while no process held the port (a window per 500 ms timeout).
  const bound = WINDOW * (2 + Math.ceil(downMs / 500));
  t.ok(echoed >= COUNT - bound, `${echoed}/${COUNT} echoed; at most ${bound} lost to the outage`);
  t.same(other.messages.filter((m) => m.type === 'error'), [], 'the other side saw no error');
  if (sc.other === 'libnice') {
    t.notMatch(other.stderr, /component state (failed|FAILED)/i, 'libnice never failed the component');
  }
  for (const p of [second, other]) p.child.stdin!.end();
  t.equal(await second.exited, 0, 'the restored peer exits 0');
  t.equal(await other.exited, 0, 'the other peer exits 0');
}

t.test('ours (controlled) killed and restored, libnice controlling', (t) => run(t, { restoredRole: 'controlled', other: 'libnice' }));
t.test('ours (controlled) killed and restored, ours controlling', (t) => run(t, { restoredRole: 'controlled', other: 'ice-agent' }));
t.test('ours (controlling) killed and restored, ours controlled', (t) => run(t, { restoredRole: 'controlling', other: 'ice-agent' }));
t.test('through TURN: ours (controlled) killed and restored, the relayed pair goes on', async (t) => {
  const turn = await startCoturn();
  t.teardown(() => turn.stop());
  const url = `${turn.host}:${turn.port}`;
  await run(t, { restoredRole: 'controlled', other: 'ice-agent', turn: { url, user: turn.username, pass: turn.password } });
});
