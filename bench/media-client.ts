/**
 * The far side of the media-server benchmark (bench/media.ts), forked by it:
 * many full-ICE client agents in one process, each on its own socket on
 * 127.0.0.1, controlling, with consent freshness at the browser rate (the
 * defaults: a request every 5 s × 0.8–1.2); the same packet rate of plain
 * datagrams to the echo server, for the CPU comparison; and the flood of
 * Binding requests for unknown ufrags. Commands come over the fork IPC
 * channel (the RPC helpers below, which bench/media.ts uses too).
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Agent, serializeCandidate, DEFAULT_OPTIONS } from '../lib/index.js';
import { encodeBindingRequest } from '../lib/stun/binding.js';

// ------------------------------------------------------------------- RPC

/** A description, as the line protocol's `description` message has it, plus the session id. */
export interface Offer {
  id: number;
  ufrag: string;
  pwd: string;
  candidates: string[];
}

type Handler = (arg: any) => unknown;

interface Request { rpc: number; cmd: string; arg: unknown }
interface Reply { rpc: number; ok: boolean; value?: unknown; error?: string }

/** The parent's side: `call` resolves with the child's answer; `events` get the child's unsolicited messages. */
export class Rpc {
  readonly child: ChildProcess;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  readonly #events = new Set<(m: Record<string, unknown>) => void>();

  constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (m: Reply | Record<string, unknown>) => {
      if (typeof (m as Reply).rpc === 'number') {
        const r = m as Reply;
        const p = this.#pending.get(r.rpc);
        this.#pending.delete(r.rpc);
        if (r.ok) p?.resolve(r.value);
        else p?.reject(new Error(r.error));
        return;
      }
      for (const fn of this.#events) fn(m as Record<string, unknown>);
    });
    child.on('exit', (code, signal) => {
      for (const p of this.#pending.values()) p.reject(new Error(`the child exited (${signal ?? code})`));
      this.#pending.clear();
    });
  }

  call<T = unknown>(cmd: string, arg?: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const rpc = this.#next++;
      this.#pending.set(rpc, { resolve, reject });
      this.child.send({ rpc, cmd, arg } satisfies Request);
    });
  }

  /** Resolves with the first event message for which `pred` holds. */
  event(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const fn = (m: Record<string, unknown>) => {
        if (!pred(m)) return;
        this.#events.delete(fn);
        resolve(m);
      };
      this.#events.add(fn);
    });
  }
}

/** The child's side: answers each request with its handler's (awaited) value. */
export function serveRpc(handlers: Record<string, Handler>): void {
  process.on('message', async (m: Request) => {
    if (typeof m?.rpc !== 'number') return;
    try {
      const fn = handlers[m.cmd];
      if (!fn) throw new Error(`unknown command ${m.cmd}`);
      process.send!({ rpc: m.rpc, ok: true, value: await fn(m.arg) } satisfies Reply);
    } catch (err) {
      process.send!({ rpc: m.rpc, ok: false, error: (err as Error).stack ?? String(err) } satisfies Reply);
    }
  });
  // The parent went away: so do we.
  process.on('disconnect', () => process.exit(0));
}

/**
 * CPU jiffies (user + system) of the process and of its main thread, from
 * /proc (Linux; undefined elsewhere): the main thread runs the JavaScript and
 * the sockets, the others V8's garbage collection and compilation.
 */
function jiffies(): { process: number; main: number } | undefined {
  try {
    const read = (path: string) => {
      const f = readFileSync(path, 'utf8');
      const r = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return Number(r[11]) + Number(r[12]);
    };
    return { process: read('/proc/self/stat'), main: read(`/proc/self/task/${process.pid}/stat`) };
  } catch {
    return undefined;
  }
}

/** CPU and a packet counter over a window: `cpuStart`, then `cpuStop` gives the deltas. */
export function cpuWindow(packets: () => number = () => 0) {
  let start: { cpu: NodeJS.CpuUsage; at: number; packets: number; j: ReturnType<typeof jiffies> } | undefined;
  return {
    cpuStart: () => {
      start = { cpu: process.cpuUsage(), at: performance.now(), packets: packets(), j: jiffies() };
      return true;
    },
    cpuStop: () => {
      const cpu = process.cpuUsage(start!.cpu);
      const j = jiffies();
      const cpuMs = (cpu.user + cpu.system) / 1000;
      // The main thread's share of the process's jiffies, applied to the precise total.
      const share = j && start!.j && j.process > start!.j.process ? (j.main - start!.j.main) / (j.process - start!.j.process) : NaN;
      return {
        cpuMs, userMs: cpu.user / 1000, systemMs: cpu.system / 1000, mainThreadMs: cpuMs * share,
        wallMs: performance.now() - start!.at, packets: packets() - start!.packets,
      };
    },
  };
}

/** Is this module the process's main script (forked), rather than imported? */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(url);
}

// --------------------------------------------------------------- clients

interface Client {
  id: number;
  agent: Agent;
  stream: number;
}

function clientRole(): void {
  const clients = new Map<number, Client>();
  const queue: Array<Offer> = [];
  let concurrency = 64;
  let active = 0;
  let connected = 0;
  let failed = 0;
  let expected = 0;
  const errors: string[] = [];

  const report = () => {
    if (connected + failed === expected) process.send!({ event: 'connected', connected, failed, errors: errors.slice(0, 5) });
  };
  /** Starts checks for queued answers, at most `concurrency` connecting at once. */
  const pump = () => {
    while (active < concurrency && queue.length > 0) {
      const a = queue.shift()!;
      const c = clients.get(a.id)!;
      active++;
      c.agent.setRemoteCredentials(c.stream, a.ufrag, a.pwd);
      c.agent.setRemoteCandidates(c.stream, 1, a.candidates);
      c.agent.connect(c.stream, { timeout: 60_000 }).then(() => {
        connected++;
      }, (err: Error) => {
        failed++;
        if (errors.length < 5) errors.push(err.message);
      }).finally(() => {
        active--;
        report();
        pump();
      });
    }
  };

  // The flood's sockets stay open (and count answers: there must be none) until floodEnd.
  let floodSockets: Socket[] = [];
  let floodAnswers = 0;
  // Plain datagrams at the consent rate, for the echo server.
  let echo: { sockets: Socket[]; timers: NodeJS.Timeout[]; sent: number; received: number } | undefined;

  serveRpc({
    /** `count` agents, gathered; resolves with their offers. */
    create: async (arg: { first: number; count: number; concurrency: number }) => {
      concurrency = arg.concurrency;
      expected += arg.count;
      const offers: Offer[] = [];
      for (let i = 0; i < arg.count; i += 256) {
        const batch: Promise<void>[] = [];
        for (let id = arg.first + i; id < arg.first + Math.min(arg.count, i + 256); id++) {
          const agent = new Agent({ controllingMode: true, localAddresses: ['127.0.0.1'] });
          const c: Client = { id, agent, stream: agent.addStream(1) };
          clients.set(id, c);
          batch.push(agent.gatherCandidates(c.stream).then(() => {
            const { ufrag, pwd } = agent.getLocalCredentials(c.stream);
            offers.push({ id, ufrag, pwd, candidates: agent.getLocalCandidates(c.stream, 1).map((x) => serializeCandidate(x)) });
          }));
        }
        await Promise.all(batch);
      }
      return offers;
    },
    /** The server's answers: queued, and connected `concurrency` at a time. */
    answer: (answers: Offer[]) => {
      queue.push(...answers);
      pump();
      return answers.length;
    },
    /** Component states of every client agent, counted. */
    states: () => {
      const n: Record<string, number> = {};
      for (const c of clients.values()) {
        const s = c.agent.getComponentState(c.stream, 1);
        n[s] = (n[s] ?? 0) + 1;
      }
      return n;
    },
    /**
     * One datagram of `size` bytes per client agent every consentInterval ×
     * 0.8–1.2, to the echo server, each client from a socket of its own: the
     * packet rate the agents' consent requests make, from as many sources as
     * there are sessions (the kernel's and Node's work per datagram depends on
     * how many sockets it comes from and goes to), first ticks spread over one interval.
     */
    echoStart: async (arg: { address: string; port: number; packet: number[] }) => {
      const packet = Buffer.from(arg.packet);
      const e = { sockets: [] as Socket[], timers: [] as NodeJS.Timeout[], sent: 0, received: 0 };
      for (let k = 0; k < clients.size; k++) {
        const socket = createSocket('udp4');
        await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
        socket.on('message', () => e.received++);
        e.sockets.push(socket);
      }
      const interval = DEFAULT_OPTIONS.consentInterval;
      const tick = (k: number) => {
        e.sockets[k]!.send(packet, arg.port, arg.address);
        e.sent++;
        e.timers[k] = setTimeout(tick, interval * (0.8 + 0.4 * Math.random()), k);
      };
      for (let k = 0; k < clients.size; k++) e.timers.push(setTimeout(tick, interval * Math.random(), k));
      echo = e;
      return clients.size;
    },
    echoStop: async () => {
      if (!echo) return undefined;
      for (const t of echo.timers) clearTimeout(t);
      const { sent, received } = echo;
      await Promise.all(echo.sockets.map((socket) => new Promise<void>((r) => socket.close(() => r()))));
      echo = undefined;
      return { sent, received };
    },
    /**
     * `requests` Binding requests, each for a random unknown ufrag, with
     * MESSAGE-INTEGRITY and FINGERPRINT, from `ports` sockets in turn, at
     * about `rate` per second; resolves when all are sent.
     */
    /**
     * `requests` Binding requests, each for a random unknown ufrag, with
     * MESSAGE-INTEGRITY and FINGERPRINT, from `ports` sockets in turn, at
     * about `rate` per second; resolves when all are sent. They are built
     * before the clock starts, so that the rate is the sending's alone.
     */
    flood: async (arg: { address: string; port: number; requests: number; ports: number; rate: number }) => {
      const sockets: Socket[] = [];
      for (let i = 0; i < arg.ports; i++) {
        const s = createSocket('udp4');
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
        s.on('message', () => floodAnswers++);
        sockets.push(s);
      }
      floodSockets = sockets;
      const random = randomBytes(arg.requests * 20);
      const packets: Buffer[] = [];
      for (let i = 0; i < arg.requests; i++) {
        packets.push(encodeBindingRequest({
          transactionId: random.subarray(i * 20, i * 20 + 12), username: `${random.toString('hex', i * 20 + 12, i * 20 + 16)}:${random.toString('hex', i * 20 + 16, i * 20 + 20)}`,
          password: 'flood-flood-flood-flood-', priority: 1862270975, controlling: true, tieBreaker: 1n, useCandidate: true,
        }));
      }
      const t0 = performance.now();
      const batch = 200;
      let sent = 0;
      while (sent < arg.requests) {
        const n = Math.min(batch, arg.requests - sent);
        for (let i = 0; i < n; i++, sent++) sockets[sent % sockets.length]!.send(packets[sent]!, arg.port, arg.address);
        // Pace to `rate`: wait until this batch's share of the time has passed.
        const due = t0 + (sent / arg.rate) * 1000;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }
      return { sent, ms: performance.now() - t0 };
    },
    floodEnd: async () => {
      const s = floodSockets;
      floodSockets = [];
      await Promise.all(s.map((x) => new Promise<void>((r) => x.close(() => r()))));
      return { ports: s.length, answers: floodAnswers };
    },
    ...cpuWindow(),
    close: async () => {
      await Promise.all([...clients.values()].map((c) => c.agent.close()));
      clients.clear();
      return true;
    },
  });
}

if (isMain(import.meta.url)) clientRole();
