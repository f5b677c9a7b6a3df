/**
 * A tiny UDP endpoint run as a separate node process inside one of the rig's namespaces, driven over stdin/stdout
 * with JSON lines. It can hold several sockets, send on any of them, report every datagram it receives (with the
 * source address/port it saw), and optionally act as a "what's my address" reflector that answers every datagram
 * with the JSON {"address","port","echo"}: its sender's address and port, and the hex of what it sent.
 */
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import type { NatRig } from './netns.js';

export interface Endpoint {
  address: string;
  port: number;
}

export interface ProbeMessage {
  /** Index of the receiving socket. */
  socket: number;
  from: Endpoint;
  data: Buffer;
}

/** The program run by `node -e` inside the namespace (plain JS: node 20 cannot run TypeScript itself). */
const PROBE_SCRIPT = `
const dgram = require('node:dgram');
const readline = require('node:readline');
const cfg = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const sockets = cfg.sockets.map((b, i) => {
  const s = dgram.createSocket('udp4');
  s.on('error', (e) => out({ ev: 'error', socket: i, message: e.message }));
  s.on('message', (m, r) => {
    out({ ev: 'message', socket: i, from: { address: r.address, port: r.port }, data: m.toString('hex') });
    if (cfg.reflect) s.send(JSON.stringify({ address: r.address, port: r.port, echo: m.toString('hex') }), r.port, r.address);
  });
  return s;
});
Promise.all(sockets.map((s, i) => new Promise((res) => s.bind(cfg.sockets[i].port || 0, cfg.sockets[i].address, res))))
  .then(() => out({ ev: 'listening', sockets: sockets.map((s) => s.address()) }));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'send') sockets[c.socket].send(Buffer.from(c.data, 'hex'), c.port, c.address, (e) => e && out({ ev: 'error', socket: c.socket, message: e.message }));
  else if (c.op === 'ping') out({ ev: 'pong', id: c.id });
}).on('close', () => process.exit(0));
`;

interface Waiter {
  pred: (m: ProbeMessage) => boolean;
  resolve: (m: ProbeMessage) => void;
}

export class UdpProbe {
  /** Every datagram received so far, in order. */
  readonly messages: ProbeMessage[] = [];
  /** Bound addresses, one per socket, in the order given to start(). */
  local: Endpoint[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly pongs = new Map<number, () => void>();
  private nextPing = 0;
  private stderr = '';
  private exited: string | undefined;
  private readonly onDeath = new Set<(err: Error) => void>();

  private constructor(readonly name: string, readonly child: ChildProcess) {}

  /**
   * Starts a probe in `ns` with one socket per entry of `sockets` (address defaults to 0.0.0.0, port to ephemeral).
   * With `reflect`, every datagram is answered with the JSON {address, port, echo} of its sender.
   */
  static async start(
    rig: NatRig,
    ns: string,
    sockets: Array<Partial<Endpoint>> = [{}],
    opts: { reflect?: boolean; timeoutMs?: number } = {},
  ): Promise<UdpProbe> {
    const cfg = { sockets: sockets.map((s) => ({ address: s.address ?? '0.0.0.0', port: s.port ?? 0 })), reflect: !!opts.reflect };
    const child = rig.spawnIn(ns, process.execPath, ['-e', PROBE_SCRIPT, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const probe = new UdpProbe(`probe in ${ns}`, child);
    const listening = new Promise<Endpoint[]>((resolve, reject) => {
      probe.onDeath.add(reject);
      probe.listeningCb = resolve;
    });
    probe.attach();
    probe.local = await withTimeout(listening, opts.timeoutMs ?? 5000, () => `${probe.name} did not start listening${probe.why()}`);
    return probe;
  }

  private listeningCb: ((eps: Endpoint[]) => void) | undefined;

  private attach(): void {
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    const die = (why: string) => {
      this.exited ??= why;
      for (const f of this.onDeath) f(new Error(`${this.name}: ${why}${this.why()}`));
    };
    this.child.once('error', (e) => die(`cannot spawn: ${e.message}`));
    this.child.once('exit', (code, sig) => die(`exited (${code ?? sig})`));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const ev = JSON.parse(line) as { ev: string; [k: string]: unknown };
      if (ev.ev === 'listening') this.listeningCb?.((ev.sockets as Endpoint[]).map(({ address, port }) => ({ address, port })));
      else if (ev.ev === 'pong') this.pongs.get(ev.id as number)?.();
      else if (ev.ev === 'error') this.stderr += `socket ${String(ev.socket)}: ${String(ev.message)}\n`;
      else if (ev.ev === 'message') {
        const m: ProbeMessage = { socket: ev.socket as number, from: ev.from as Endpoint, data: Buffer.from(ev.data as string, 'hex') };
        this.messages.push(m);
        for (const w of this.waiters) if (w.pred(m)) { this.waiters.delete(w); w.resolve(m); }
      }
    });
  }

  private why(): string {
    return this.stderr.trim() ? `; stderr/errors: ${this.stderr.trim()}` : '';
  }

  send(to: Endpoint, data: Buffer | string, socket = 0): void {
    if (this.exited) throw new Error(`${this.name} ${this.exited}${this.why()}`);
    const hex = Buffer.from(data).toString('hex');
    this.child.stdin!.write(JSON.stringify({ op: 'send', socket, address: to.address, port: to.port, data: hex }) + '\n');
  }

  /**
   * Resolves with the first message matching `pred` among those received from index `since` of `messages` on
   * (default 0: already received ones count too); rejects after `ms` or if the probe dies.
   */
  waitForMessage(pred: (m: ProbeMessage) => boolean = () => true, ms = 3000, what = 'a matching datagram', since = 0): Promise<ProbeMessage> {
    const seen = this.messages.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    let waiter: Waiter | undefined;
    let death: ((err: Error) => void) | undefined;
    const p = new Promise<ProbeMessage>((resolve, reject) => {
      waiter = { pred, resolve };
      this.waiters.add(waiter);
      death = reject;
      this.onDeath.add(death);
      if (this.exited) reject(new Error(`${this.name} ${this.exited}${this.why()}`));
    });
    return withTimeout(p, ms, () => `${this.name}: no ${what} within ${ms} ms (got ${this.messages.length} datagrams)${this.why()}`)
      .finally(() => { this.waiters.delete(waiter!); this.onDeath.delete(death!); });
  }

  /**
   * Round trip over the control pipe: once it resolves, every datagram the probe received before it answered has
   * been reported into `messages` (stdout is ordered).
   */
  sync(ms = 3000): Promise<void> {
    const id = this.nextPing++;
    const p = new Promise<void>((resolve) => this.pongs.set(id, resolve));
    this.child.stdin!.write(JSON.stringify({ op: 'ping', id }) + '\n');
    return withTimeout(p, ms, () => `${this.name}: no pong within ${ms} ms${this.why()}`).finally(() => this.pongs.delete(id));
  }

  /**
   * Asks a reflector at `server` which address/port it sees this socket as. Resends every 100 ms until answered
   * (the first datagram through a fresh NAT may be delayed by ARP).
   */
  async reflexive(server: Endpoint, socket = 0, ms = 3000): Promise<Endpoint> {
    const tag = Buffer.from(`whoami-${Math.random().toString(36).slice(2)}`);
    const answer = (m: ProbeMessage) => {
      if (m.socket !== socket || m.from.address !== server.address || m.from.port !== server.port) return undefined;
      try {
        const j = JSON.parse(m.data.toString()) as Endpoint & { echo?: string };
        return j.echo === tag.toString('hex') ? { address: j.address, port: j.port } : undefined;
      } catch {
        return undefined;
      }
    };
    const reply = this.waitForMessage((m) => !!answer(m), ms, `reflector reply from ${server.address}:${server.port}`, this.messages.length);
    const timer = setInterval(() => this.send(server, tag, socket), 100);
    this.send(server, tag, socket);
    try {
      return answer(await reply)!;
    } finally {
      clearInterval(timer);
    }
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.onDeath.add(() => resolve()));
    this.child.kill('SIGKILL');
    await gone;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message())), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
