/**
 * The SFU example (examples/sfu.ts) as a user runs it: one SFU process, one
 * UDP port, ICE-lite agents on a UdpMux; three unchanged CLI peers joined
 * through the HTTP bridge (examples/sfu-join.ts). Each peer's datagrams must
 * reach the other two, and every session must share the SFU's one socket.
 *
 * How "reached the others" is observed without changing the line protocol:
 * - the SFU's own counters per session (GET /stats): how many datagrams it
 *   received from each peer, and how many of them it forwarded to each other
 *   session, with the selected pair's W3C packetsSent/packetsReceived;
 * - each peer's own pair stats, which `--verbose` prints on stderr when it
 *   exits: packetsReceived on its selected pair counts its echoes and the
 *   other peers' forwarded datagrams.
 *
 * These tests run compiled JavaScript: build first with `npx tsc -p tsconfig.json`.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { staleBuild, tail, ROOT } from './support/build.js';
import { parseCandidate } from '../lib/index.js';
import { socketDrops } from '../bench/stats.js';
import type { SfuStats } from '../examples/sfu.js';

const SFU = join(ROOT, 'dist/examples/sfu.js');
const JOIN = join(ROOT, 'dist/examples/sfu-join.js');
const PEERS = 3;
const COUNT = 200;
/**
 * Datagrams in flight per peer. The SFU sends three datagrams for each it
 * receives; a small window keeps every socket's queue far below its buffer,
 * so that loopback loses nothing.
 */
const WINDOW = 8;

type Message = Record<string, unknown> & { type: string };

/** A child process whose stdout lines (JSON messages) can be awaited. */
class Proc {
  readonly child: ChildProcess;
  readonly messages: Message[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();

  constructor(args: string[]) {
    this.child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin!.on('error', () => {});
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.messages.push(JSON.parse(line) as Message);
      } catch {
        this.messages.push({ type: 'invalid', line });
      }
      for (const w of [...this.#waiters]) w();
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      for (const w of [...this.#waiters]) w();
      resolve({ code, signal });
    }));
  }

  first(type: string): Message | undefined {
    return this.messages.find((m) => m.type === type);
  }

  /** Resolves with the first message of `type`; rejects if the process exits first or after `ms`. */
  waitFor(type: string, ms: number): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.first(type);
        if (m) done(() => resolve(m));
        else if (this.child.exitCode !== null || this.child.signalCode !== null) done(() => reject(new Error(`exited before writing ${type}; stderr:\n${tail(this.stderr)}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no ${type} within ${ms} ms; stderr:\n${tail(this.stderr)}`))), ms);
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        fn();
      };
      this.#waiters.add(check);
      check();
    });
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

async function getStats(url: string): Promise<SfuStats> {
  const res = await fetch(`${url}/stats`);
  return (await res.json()) as SfuStats;
}

/** Polls GET /stats every 20 ms until `ok` holds; after `ms`, resolves with the last stats anyway (the assertions say what is wrong). */
async function statsWhen(url: string, ok: (s: SfuStats) => boolean, ms: number): Promise<SfuStats> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await getStats(url);
    if (ok(s) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The UDP sockets a process holds: its socket fds matched against the kernel's UDP tables, with their local ports. */
function udpSocketsOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      if (f.length > 9 && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** The `agent stats` JSON the CLI peer prints on stderr with --verbose when it exits. */
function peerStats(stderr: string): { packetsSent: number; packetsReceived: number } | undefined {
  const m = /^ice-agent-peer\S*: agent stats (\{.*\})$/m.exec(stderr);
  if (!m) return undefined;
  const st = JSON.parse(m[1]!);
  return st.streams?.[0]?.components?.[0]?.pairs?.find((p: { selected: boolean }) => p.selected);
}

const missing = [SFU, JOIN, join(ROOT, 'dist/examples/peer.js')].filter((f) => !existsSync(f));
if (missing.length) {
  t.fail(`${missing.map((f) => relative(ROOT, f)).join(', ')} missing: build with \`npx tsc -p tsconfig.json\``);
} else {
  t.test('the build is up to date', async (t) => {
    const stale = staleBuild();
    t.same(stale, [], stale.length ? `dist/ is older than ${stale.join(', ')}: rebuild with \`npx tsc -p tsconfig.json\`` : 'dist/ is current');
  });

  t.test(`SFU: ${PEERS} CLI peers on one UDP port, every datagram forwarded to the others`, async (t) => {
    const sfu = new Proc([SFU, '--host', '127.0.0.1', '--room', String(PEERS)]);
    const bridges: Proc[] = [];
    t.teardown(async () => {
      for (const b of bridges) b.kill();
      sfu.kill();
      await Promise.all([sfu, ...bridges].map((p) => p.exited));
    });
    const listening = await sfu.waitFor('listening', 10_000);
    const url = String(listening.http);
    const [udpAddress, udpPort] = String(listening.udp).split(':') as [string, string];
    t.equal(udpAddress, '127.0.0.1', `the SFU listens on ${listening.udp}, signalling on ${url}`);

    for (let i = 0; i < PEERS; i++) {
      bridges.push(new Proc([JOIN, '--sfu', url, '--',
        '--count', String(COUNT), '--size', '200', '--window', String(WINDOW), '--timeout', '10', '--verbose']));
    }
    const diag = () => ({ sfu: tail(sfu.stderr, 15), bridges: bridges.map((b) => tail(b.stderr.split('\n').filter((l) => !l.includes('agent stats')).join('\n'), 10)) });
    const dones = await Promise.all(bridges.map((b) => b.waitFor('done', 30_000)));
    const sent = dones.map((d) => Number(d.sent));
    t.same(sent, bridges.map(() => COUNT), `each peer sent ${COUNT} datagrams`);
    const ufrags = bridges.map((b) => String(b.first('description')?.ufrag));

    // All three `done`s are in; wait for the SFU to have taken in every datagram the peers sent.
    const total = sent.reduce((a, b) => a + b, 0);
    const st = await statsWhen(url, (s) => s.sessions.reduce((a, x) => a + x.received, 0) >= total, 3000);
    t.equal(st.sessions.length, PEERS, 'one session per peer', diag());
    t.ok(st.open, 'the room opened');
    const byPeer = ufrags.map((u) => st.sessions.find((s) => s.remoteUfrag === u));
    t.ok(byPeer.every(Boolean), 'every peer has its session (matched by its ufrag)');
    if (!byPeer.every(Boolean)) return;
    const sessions = byPeer as SfuStats['sessions'];
    const received = sessions.map((s) => s.received);

    // One port, one socket.
    t.same(udpSocketsOf(sfu.child.pid!), [Number(udpPort)], 'the SFU process holds exactly one UDP socket, on the announced port');
    t.match(st.mux, { views: PEERS, routes: PEERS, routedByUfrag: PEERS }, 'the mux has a view and a route per session; each was routed by its ufrag once');
    for (const [i, s] of sessions.entries()) {
      t.same(s.localCandidates.map((c) => { const p = parseCandidate(c); return `${p.address}:${p.port} ${p.type}`; }),
        [`${udpAddress}:${udpPort} host`], `session ${s.id}: one host candidate, the mux's address and port`);
      const connected = bridges[i]!.first('connected');
      const remote = parseCandidate(String(connected?.remote));
      const local = parseCandidate(String(connected?.local));
      t.equal(`${remote.address}:${remote.port}`, String(listening.udp), `peer ${i + 1} talks to the SFU's one port`);
      t.equal(s.state, 'ready', `session ${s.id} is ready`);
      t.equal(s.selectedPair?.local, String(listening.udp), `session ${s.id}: the selected pair is on the shared socket`);
      t.equal(s.selectedPair?.remote, `${local.address}:${local.port}`, `session ${s.id}: and goes to peer ${i + 1}`);
    }

    // Every peer's data reached the others.
    for (const [i, s] of sessions.entries()) {
      t.ok(received[i]! >= COUNT * 0.99, `the SFU received ${received[i]} of peer ${i + 1}'s ${COUNT} datagrams`, diag());
      t.equal(s.selectedPair?.packetsReceived, received[i], `session ${s.id}: the pair's packetsReceived agrees`);
      t.equal(s.echoed, received[i], `session ${s.id}: each returned to its sender`);
      for (const [j, other] of sessions.entries()) {
        if (j === i) continue;
        t.equal(s.forwardedFrom[other.id], received[j], `peer ${i + 1} was sent all ${received[j]} datagrams of peer ${j + 1}`);
      }
      const expected = received.reduce((a, b) => a + b, 0);
      t.equal(s.selectedPair?.packetsSent, expected, `session ${s.id}: packetsSent = its echoes + the others' forwards = ${expected}`);
    }

    // What the kernel dropped at each peer's full receive buffer (loopback loses nothing else): a peer
    // that the machine's load stalls for a moment cannot read the other peers' forwards as fast as they come.
    const kernelDrops = bridges.map((b) => socketDrops(parseCandidate(String(b.first('connected')?.local)).port));

    // The peers' own view, printed as they exit (end of the bridges' stdin is the end of theirs).
    for (const b of bridges) b.child.stdin!.end();
    const exits = await Promise.all(bridges.map((b) => b.exited));
    t.same(exits.map((e) => e.code), bridges.map(() => 0), 'every bridge (and its peer) exits 0', diag());
    for (const [i, b] of bridges.entries()) {
      const p = peerStats(b.stderr);
      const want = sessions[i]!.selectedPair!.packetsSent;
      t.ok(p, `peer ${i + 1} printed its stats`);
      t.equal(p?.packetsSent, sent[i], `peer ${i + 1}: packetsSent = its ${sent[i]} datagrams`);
      // Every datagram the SFU sent the peer was received or dropped by the peer's kernel: none went astray.
      const dropped = kernelDrops[i]!;
      t.equal((p?.packetsReceived ?? NaN) + dropped, want,
        `peer ${i + 1} received ${p?.packetsReceived} of the ${want} datagrams the SFU sent it (its echoes and the other peers' data), ${dropped} dropped by its kernel at its full socket buffer`);
      t.ok(p !== undefined && p.packetsReceived >= want * 0.5, `peer ${i + 1} received most of them`);
      if (dropped > 0) t.comment(`peer ${i + 1}: ${dropped} datagrams dropped at its full receive buffer (the machine was busy)`);
    }

    // Leaving: the bridges' DELETEs closed the sessions; the shared socket stays.
    const after = await getStats(url);
    t.same([after.sessions.length, after.mux.views, after.mux.routes], [0, 0, 0], 'every session left; no view or route remains');
    t.same(udpSocketsOf(sfu.child.pid!), [Number(udpPort)], 'the one socket is still open for the next peers');

    sfu.child.kill('SIGTERM');
    t.equal((await sfu.exited).code, 0, 'the SFU stops cleanly on SIGTERM');
    t.comment(`SFU on ${listening.udp}: ${received.join(' + ')} datagrams in, ${sessions.map((s) => s.selectedPair?.packetsSent).join(' + ')} out; mux ${JSON.stringify(st.mux)}`);
  });

  t.test('SFU: a description that is not one is refused with 400; unknown paths with 404', async (t) => {
    const sfu = new Proc([SFU, '--host', '127.0.0.1']);
    t.teardown(async () => {
      sfu.kill();
      await sfu.exited;
    });
    const url = String((await sfu.waitFor('listening', 10_000)).http);
    const post = (body: string) => fetch(`${url}/join`, { method: 'POST', body });
    for (const body of ['not json', '{"type":"candidate"}', '{"type":"description","ufrag":1,"pwd":"x","candidates":[]}',
      '{"type":"description","ufrag":"abcd","pwd":"0123456789abcdef012345","candidates":["candidate:bogus"]}']) {
      const res = await post(body);
      t.equal(res.status, 400, `400 for ${body}`);
      t.match(await res.json(), { type: 'error', message: String }, 'with an error message in the protocol\'s shape');
    }
    t.equal((await fetch(`${url}/sessions/42`, { method: 'DELETE' })).status, 404);
    t.equal((await fetch(`${url}/nothing`)).status, 404);
    t.same((await getStats(url)).sessions, [], 'no session was left behind');
  });
}
