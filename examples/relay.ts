/**
 * A dumb signalling relay for two peers speaking the line protocol of
 * peer-protocol.md: it spawns both, copies every line one prints to the
 * other's stdin unchanged, and records what each wrote.
 *
 * Both stdins are closed as soon as the controlling side prints `done`, or
 * either side prints `error`, or either process exits; a timeout kills both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';

/** One protocol message (a JSON object with a `type`). */
export type PeerMessage = Record<string, unknown> & { type: string };

export interface PeerSpec {
  cmd: string;
  args: string[];
  /** Environment of the process (default: the relay's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface PeerResult {
  /** Every JSON message the peer wrote on stdout, in order. */
  messages: PeerMessage[];
  /** For each message, ms from the spawn of the pair to when the relay read it. */
  times: number[];
  /** stdout lines that were not protocol messages (a protocol violation; still relayed). */
  invalid: string[];
  /** Exit code; null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The process's stderr (its last MAX_STDERR characters). */
  stderr: string;
}

export interface RunResult {
  a: PeerResult;
  b: PeerResult;
  /** The timeout expired and both peers were killed. */
  timedOut: boolean;
  /** Why the stdins were closed (e.g. `a wrote done`), or undefined if never. */
  closedBecause: string | undefined;
  /** ms from the spawn to both processes gone. */
  ms: number;
}

export interface RunPairOptions {
  a: PeerSpec;
  b: PeerSpec;
  /** Kill both peers after this long (default 30 s). */
  timeoutMs?: number;
  /**
   * Which side's `done` ends the run. By default the side started with
   * `--role controlling`; if neither was, a `done` from either side.
   */
  controlling?: 'a' | 'b';
  /** Called for every message as it is relayed (e.g. to print progress). */
  onMessage?: (side: 'a' | 'b', message: PeerMessage, ms: number) => void;
  /** Called with every chunk a peer writes on stderr (e.g. to show its logs as they come). */
  onStderr?: (side: 'a' | 'b', chunk: string) => void;
  /** Rewrites a line on its way from `from` to the other peer (tests only: the relay is otherwise dumb). */
  rewrite?: (from: 'a' | 'b', line: string) => string;
}

/** Keep at most this much stderr per peer (libnice with NICE_DEBUG=all is chatty). */
const MAX_STDERR = 1 << 20;
/** After the timeout's SIGTERM, SIGKILL whoever is still there this much later. */
const KILL_GRACE_MS = 2000;
/**
 * After a peer exits, wait at most this long for its stdout and stderr to end
 * (a grandchild may still hold them open), then stop reading them.
 */
const DRAIN_MS = 2000;

/** The value of `--role` in an argument list, in either `--role X` or `--role=X` form. */
export function roleOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--role') return args[i + 1];
    if (a.startsWith('--role=')) return a.slice('--role='.length);
  }
  return undefined;
}

export function runPair(opts: RunPairOptions): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const controlling = opts.controlling ??
    (roleOf(opts.a.args) === 'controlling' ? 'a' : roleOf(opts.b.args) === 'controlling' ? 'b' : undefined);
  const start = performance.now();
  const sides = ['a', 'b'] as const;
  type Side = (typeof sides)[number];
  const other = (s: Side): Side => (s === 'a' ? 'b' : 'a');

  const results: Record<Side, PeerResult> = {
    a: { messages: [], times: [], invalid: [], code: null, signal: null, stderr: '' },
    b: { messages: [], times: [], invalid: [], code: null, signal: null, stderr: '' },
  };
  const procs = {} as Record<Side, ChildProcess>;
  let closedBecause: string | undefined;
  let timedOut = false;

  return new Promise<RunResult>((resolve) => {
    let running = 2;
    let killTimer: NodeJS.Timeout | undefined;

    const closeStdins = (why: string): void => {
      if (closedBecause !== undefined) return;
      closedBecause = why;
      for (const s of sides) procs[s].stdin?.end();
    };

    const timer = setTimeout(() => {
      timedOut = true;
      closeStdins(`timeout after ${timeoutMs} ms`);
      for (const s of sides) if (procs[s].exitCode === null && procs[s].signalCode === null) procs[s].kill('SIGTERM');
      killTimer = setTimeout(() => {
        for (const s of sides) if (procs[s].exitCode === null && procs[s].signalCode === null) procs[s].kill('SIGKILL');
      }, KILL_GRACE_MS);
    }, timeoutMs);

    const gone = { a: false, b: false };
    const exited = (s: Side, code: number | null, signal: NodeJS.Signals | null): void => {
      if (gone[s]) return;
      gone[s] = true;
      results[s].code = code;
      results[s].signal = signal;
      closeStdins(`${s} exited (${signal ?? code})`);
      if (--running === 0) {
        clearTimeout(timer);
        clearTimeout(killTimer);
        resolve({ a: results.a, b: results.b, timedOut, closedBecause, ms: Math.round(performance.now() - start) });
      }
    };

    for (const s of sides) {
      const spec = opts[s];
      const p = spawn(spec.cmd, spec.args, { stdio: ['pipe', 'pipe', 'pipe'], env: spec.env ?? process.env, cwd: spec.cwd });
      procs[s] = p;
      // Writing to a peer that already exited must not take the relay down.
      p.stdin!.on('error', () => {});
      p.stderr!.setEncoding('utf8');
      p.stderr!.on('data', (chunk: string) => {
        const r = results[s];
        opts.onStderr?.(s, chunk);
        r.stderr += chunk;
        if (r.stderr.length > MAX_STDERR) r.stderr = r.stderr.slice(-MAX_STDERR);
      });
      createInterface({ input: p.stdout!, crlfDelay: Infinity }).on('line', (line) => {
        const ms = Math.round(performance.now() - start);
        // The relay is dumb: every line goes across unchanged while the run lasts.
        if (closedBecause === undefined) procs[other(s)].stdin?.write((opts.rewrite ? opts.rewrite(s, line) : line) + '\n');
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          msg = undefined;
        }
        if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof (msg as PeerMessage).type !== 'string') {
          results[s].invalid.push(line);
          return;
        }
        const m = msg as PeerMessage;
        results[s].messages.push(m);
        results[s].times.push(ms);
        opts.onMessage?.(s, m, ms);
        if (m.type === 'error') closeStdins(`${s} wrote error`);
        else if (m.type === 'done' && (controlling === undefined || controlling === s)) closeStdins(`${s} wrote done`);
      });
      p.on('error', (err) => {
        // Spawn failure (ENOENT, EACCES): there will be no process to wait for.
        results[s].stderr += `relay: cannot run ${spec.cmd}: ${err.message}\n`;
        if (p.pid === undefined) exited(s, null, null);
      });
      // 'close' comes after stdout and stderr are drained, so every line is in.
      let drainTimer: NodeJS.Timeout | undefined;
      p.on('exit', () => {
        drainTimer = setTimeout(() => {
          p.stdout!.destroy();
          p.stderr!.destroy();
        }, DRAIN_MS);
      });
      p.on('close', (code, signal) => {
        clearTimeout(drainTimer);
        exited(s, code, signal);
      });
    }
  });
}

/** The first message of a type, if any. */
export function firstOf(r: PeerResult, type: string): PeerMessage | undefined {
  return r.messages.find((m) => m.type === type);
}

/** The relay-clock time (ms since spawn) of the first message of a type. */
export function timeOf(r: PeerResult, type: string): number | undefined {
  const i = r.messages.findIndex((m) => m.type === type);
  return i < 0 ? undefined : r.times[i];
}
