/**
 * Session continuity (issue 15): two CLI peers (examples/peer.js) connected
 * on loopback, one of them with `--session-file`; in the data phase that one
 * is killed with SIGKILL and started again with `--restore`. Measured from
 * the spawn of the new process (this process's clock, so Node's start-up is
 * in it), against a fresh connection of two new peers in the same run:
 *
 * - controlling side restored: to its `restored` line (the line protocol's
 *   "data flowing again": it starts sending at once) and to its first echo
 *   (it runs with `--count 1`, so its `done` line is the first echo), against
 *   the fresh pair's controlling peer to `connected` and to its first echo
 *   (`--count 1` too);
 * - controlled side restored: to its `restored` line, which it writes at the
 *   first datagram from its peer and echoes that datagram, against the fresh
 *   pair's controlled peer to `connected`. The peer (controlling) has a
 *   window of datagrams in flight when the old process dies and sends again
 *   only when its 500 ms loss timer frees the window (peer-protocol.md), so
 *   this figure is mostly that timer: the restored process's own readiness is
 *   measured as well, as the first answer to a Binding request without
 *   credentials sent every 2 ms to its port from another socket (a 400, which
 *   changes nothing in the session), for both roles.
 *
 * Nothing here asserts: it reports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseCandidate } from '../lib/index.js';
import { buildStun } from '../spec/support/fuzz-stun.js';
import { figure, type Figure } from './stats.js';
import { createWaiters } from '../spec/support/waiters.js';

const PEER = fileURLToPath(new URL('../examples/peer.js', import.meta.url));
const LIB = new URL('../lib/index.js', import.meta.url).href;
const HOST = '127.0.0.1';
/** The long-running controlling side's count: more than it can send in the seconds a repeat takes. */
const LONG = 10_000_000;
const COMMON = ['--host', HOST, '--size', '100', '--window', '32', '--timeout', '15'];

type Role = 'controlling' | 'controlled';

interface Proc {
  child: ChildProcess;
  spawnedAt: number;
  messages: Array<Record<string, unknown> & { type: string; at: number }>;
  stderr: string;
  message(type: string, ms?: number): Promise<Record<string, unknown> & { at: number }>;
  exited: Promise<void>;
}

/** Waiters woken by any output of any process: no polling, no sleeping. */
const { pulse, waitFor } = createWaiters();

function start(args: string[], onLine: (line: string) => void): Proc {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const p: Proc = {
    child, spawnedAt, messages: [], stderr: '',
    message: (type, ms = 15_000) => waitFor(() => p.messages.find((m) => m.type === type), ms,
      `${type} from peer ${args.join(' ')}${p.stderr ? `: ${p.stderr.slice(-300)}` : ''}`),
    exited: new Promise((r) => child.once('exit', () => r())),
  };
  child.stdin!.on('error', () => {});
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    p.stderr = (p.stderr + d).slice(-20_000);
    pulse();
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const at = performance.now();
    try {
      const m = JSON.parse(line) as Record<string, unknown> & { type: string };
      if (typeof m.type === 'string') p.messages.push({ ...m, at });
    } catch {
      // not a protocol line
    }
    onLine(line);
    pulse();
  });
  child.once('exit', pulse);
  return p;
}

/** Ends the stdins (peers that are done exit 0), then SIGKILLs whoever is still there; resolves when all are gone. */
async function stop(procs: Array<Proc | undefined>): Promise<void> {
  const live = procs.filter((p): p is Proc => p !== undefined);
  for (const p of live) p.child.stdin!.end();
  const timer = setTimeout(() => {
    for (const p of live) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }, 2000);
  await Promise.all(live.map((p) => p.exited));
  clearTimeout(timer);
}

/**
 * A Binding request without credentials to `port` every 2 ms, from now on;
 * `answeredAt` resolves with the time of the first answer (an agent answers
 * it 400 and learns nothing from it).
 */
async function probe(port: number): Promise<{ answeredAt: Promise<number>; close(): Promise<void> }> {
  const sock = dgram.createSocket('udp4');
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.bind(0, HOST, () => r()));
  const tid = randomBytes(12);
  const req = buildStun({ type: 0x0001, tid, attrs: [], fingerprint: 'good' });
  let resolveAt!: (t: number) => void;
  const answeredAt = new Promise<number>((r) => (resolveAt = r));
  let timer: NodeJS.Timeout | undefined = setInterval(() => sock.send(req, port, HOST), 2);
  sock.send(req, port, HOST);
  sock.on('message', (m) => {
    if (m.length < 20 || (m.readUInt16BE(0) & 0x3eef) !== 0x0001 || !m.subarray(8, 20).equals(tid)) return;
    resolveAt(performance.now());
    clearInterval(timer);
    timer = undefined;
  });
  return {
    answeredAt,
    close: async () => {
      clearInterval(timer);
      await new Promise<void>((r) => sock.close(() => r()));
    },
  };
}

interface RestoreSample {
  /** Spawn → the `restored` line (bench clock). */
  restoredMs: number;
  /** What the restored process wrote: ms from its own start. */
  reportedMs: number;
  /** Controlling: spawn → its first echo (`done` of `--count 1`). */
  firstEchoMs: number | undefined;
  /** Spawn → the first answer to the probe. */
  answeringMs: number;
  /** SIGKILL of the old process → `restored`. */
  outageMs: number;
}

interface FreshSample {
  /** Spawn of both → the role's `connected` line. */
  connectedMs: number;
  /** Controlling: spawn → its first echo. */
  firstEchoMs: number | undefined;
}

async function restoreOnce(role: Role): Promise<RestoreSample> {
  const dir = mkdtempSync(join(tmpdir(), 'ice-bench-restore-'));
  const file = join(dir, 'session.json');
  const other: Role = role === 'controlling' ? 'controlled' : 'controlling';
  let ours: Proc | undefined;
  let first: Proc | undefined;
  let peer: Proc | undefined;
  let pr: Awaited<ReturnType<typeof probe>> | undefined;
  try {
    peer = start(['--role', other, ...COMMON, '--count', String(LONG)], (l) => ours?.child.stdin!.write(`${l}\n`));
    first = start(['--role', role, ...COMMON, '--count', String(LONG), '--session-file', file], (l) => peer!.child.stdin!.write(`${l}\n`));
    ours = first;
    const connected = await first.message('connected');
    await peer.message('connected');
    // Into the data phase: the controlled side reports every 100 datagrams echoed.
    const controlled = role === 'controlled' ? first : peer;
    await waitFor(() => (/echoed \d{4,}\b/.test(controlled.stderr) ? true : undefined), 15_000, 'the data phase');
    const port = parseCandidate(String(connected.local)).port;
    first.child.kill('SIGKILL');
    await first.exited;
    const killedAt = performance.now();
    pr = await probe(port);
    const second = start(['--role', role, ...COMMON, '--count', role === 'controlling' ? '1' : String(LONG), '--session-file', file, '--restore'],
      (l) => peer!.child.stdin!.write(`${l}\n`));
    ours = second;
    const restored = await second.message('restored');
    const done = role === 'controlling' ? await second.message('done') : undefined;
    if (done && Number(done.echoed) !== 1) throw new Error(`the restored controlling peer's datagram was not echoed: ${JSON.stringify(done)}`);
    const answeredAt = await Promise.race([pr.answeredAt, new Promise<number>((r) => setTimeout(() => r(NaN), 2000))]);
    return {
      restoredMs: restored.at - second.spawnedAt,
      reportedMs: Number(restored.ms),
      firstEchoMs: done ? done.at - second.spawnedAt : undefined,
      answeringMs: answeredAt - second.spawnedAt,
      outageMs: restored.at - killedAt,
    };
  } finally {
    await pr?.close();
    await stop([ours, first, peer]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * References for the start-up in the figures above: spawn → the first line
 * of `node -e` (Node alone), and of a Node that imports ice-agent first.
 */
async function startupOnce(): Promise<{ nodeMs: number; importMs: number }> {
  const line = (args: string[]) => new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let at: number | undefined;
    child.stdout!.once('data', () => (at = performance.now()));
    child.once('error', reject);
    child.once('exit', () => (at === undefined ? reject(new Error(`${args.join(' ')} printed nothing`)) : resolve(at - t0)));
  });
  const nodeMs = await line(['-e', 'process.stdout.write("up\\n")']);
  const importMs = await line(['--input-type=module', '-e', `await import(${JSON.stringify(LIB)}); process.stdout.write("up\\n")`]);
  return { nodeMs, importMs };
}

async function freshOnce(role: Role): Promise<FreshSample> {
  let a: Proc | undefined;
  let b: Proc | undefined;
  try {
    // Spawned together: a fresh session needs both processes, its signalling and its checks.
    a = start(['--role', 'controlling', ...COMMON, '--count', '1'], (l) => b?.child.stdin!.write(`${l}\n`));
    b = start(['--role', 'controlled', ...COMMON, '--count', '1'], (l) => a!.child.stdin!.write(`${l}\n`));
    const mine = role === 'controlling' ? a : b;
    const c = await mine.message('connected');
    const done = role === 'controlling' ? await a.message('done') : undefined;
    return { connectedMs: c.at - a.spawnedAt, firstEchoMs: done ? done.at - a.spawnedAt : undefined };
  } finally {
    await stop([a, b]);
  }
}

export interface RestoreRoleResult {
  role: Role;
  /** The restored process, from its spawn. */
  restored: Figure;
  reported: Figure;
  answering: Figure;
  firstEcho: Figure | undefined;
  outage: Figure;
  /** The fresh pair, from their spawn. */
  freshConnected: Figure;
  freshFirstEcho: Figure | undefined;
  /** Start-up references (spawn → first line): Node alone, and Node importing ice-agent. */
  nodeStartup: Figure;
  importStartup: Figure;
  /** Restored / fresh, to data: first echo for the controlling role, `restored` / `connected` for the controlled one. */
  ratio: number;
  error?: string;
}

export async function benchRestore(repeats: number, log: (s: string) => void = () => {}): Promise<RestoreRoleResult[]> {
  const out: RestoreRoleResult[] = [];
  for (const role of ['controlling', 'controlled'] as const) {
    const r: RestoreSample[] = [];
    const f: FreshSample[] = [];
    const u: Array<{ nodeMs: number; importMs: number }> = [];
    let error: string | undefined;
    for (let i = 0; i < repeats; i++) {
      log(`restore: ${role} side killed and restored, and a fresh pair (${i + 1}/${repeats}) ...`);
      // Alternated, so that the machine's noise hits both alike.
      try {
        r.push(await restoreOnce(role));
        f.push(await freshOnce(role));
        u.push(await startupOnce());
      } catch (e) {
        error = (e as Error).message;
        log(`restore: ${error}`);
      }
    }
    const num = (xs: Array<number | undefined>) => xs.filter((x): x is number => x !== undefined && !Number.isNaN(x));
    const firstEcho = role === 'controlling' ? figure(num(r.map((x) => x.firstEchoMs)), 'ms') : undefined;
    const freshFirstEcho = role === 'controlling' ? figure(num(f.map((x) => x.firstEchoMs)), 'ms') : undefined;
    const restored = figure(r.map((x) => x.restoredMs), 'ms');
    const freshConnected = figure(f.map((x) => x.connectedMs), 'ms');
    out.push({
      role, restored, reported: figure(r.map((x) => x.reportedMs), 'ms'), answering: figure(num(r.map((x) => x.answeringMs)), 'ms'),
      firstEcho, outage: figure(r.map((x) => x.outageMs), 'ms'), freshConnected, freshFirstEcho,
      nodeStartup: figure(u.map((x) => x.nodeMs), 'ms'), importStartup: figure(u.map((x) => x.importMs), 'ms'),
      ratio: role === 'controlling' ? firstEcho!.median / freshFirstEcho!.median : restored.median / freshConnected.median,
      ...(error ? { error } : {}),
    });
  }
  return out;
}
