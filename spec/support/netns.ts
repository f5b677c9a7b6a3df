/**
 * NAT test rig built from real Linux network namespaces (needs root, iproute2, iptables).
 *
 *                         namespace "pub" (the internet)
 *                    br0: 203.0.113.10/24 + 203.0.113.11/24
 *                    (coturn / reflectors run here)
 *                      port-a |            | port-b
 *                         wan |            | wan
 *          203.0.113.1/24  "nata"        "natb"  203.0.113.2/24
 *          198.51.100.1/26    lan |            | lan   198.51.100.65/26
 *                        lan0 |            | lan0
 *          198.51.100.2/26 "hosta"      "hostb" 198.51.100.66/26
 *
 * Every namespace is called `iceagent-<pid>-<rand>-<role>`; every veth is created directly inside the rig's
 * namespaces (`ip -n <ns> link add ... peer ... netns <other>`), so nothing is ever added to the host (root)
 * namespace: no interfaces, no routes, no sysctls, no firewall rules. Deleting the namespaces deletes the veths.
 *
 * Only the documentation ranges 203.0.113.0/24 ("public") and 198.51.100.0/24 (private LANs) are used.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * - `eim`: endpoint-independent mapping (port-preserving MASQUERADE) with address-and-port-dependent filtering
 *   (conntrack: only replies to flows the inside host opened get in). A "port-restricted cone" NAT: two of these
 *   can be hole-punched, so srflx-to-srflx ICE pairs work.
 * - `symmetric`: address-and-port-dependent mapping (MASQUERADE --random-fully: a fresh random external port per
 *   new flow, i.e. per destination) with the same filtering. srflx pairs between two of these never work.
 */
export type NatBehaviour = 'eim' | 'symmetric';

export interface NatRigOptions {
  natA: NatBehaviour;
  natB: NatBehaviour;
}

export interface TurnServerOptions {
  /** Listening port on `publicServer` (default 3478). */
  port?: number;
  user?: string;
  password?: string;
  realm?: string;
  /** Extra turnserver command-line arguments. */
  extraArgs?: string[];
  /** How long to wait for the UDP listener to come up (default 5000 ms). */
  timeoutMs?: number;
}

export interface TurnServer {
  readonly process: ChildProcess;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly realm: string;
  /** Everything coturn printed so far (useful in failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export interface NatRig {
  /** Unique per rig, e.g. `iceagent-4242-9f3a`; every namespace name starts with it. */
  readonly id: string;
  readonly options: Readonly<NatRigOptions>;
  /** Namespace names. */
  readonly public: string;
  readonly natA: string;
  readonly natB: string;
  readonly hostA: string;
  readonly hostB: string;
  readonly namespaces: readonly string[];
  /** Addresses. */
  readonly publicServer: string; // 203.0.113.10, on br0 in `public` (coturn listens here)
  readonly publicServer2: string; // 203.0.113.11, second address on br0 (a second "destination")
  readonly natAOutside: string; // 203.0.113.1
  readonly natBOutside: string; // 203.0.113.2
  readonly natAInside: string; // 198.51.100.1 (host A's gateway)
  readonly natBInside: string; // 198.51.100.65 (host B's gateway)
  readonly hostAAddress: string; // 198.51.100.2
  readonly hostBAddress: string; // 198.51.100.66
  /** Runs `ip netns exec <ns> <cmd> ...args`; resolves with stdout, rejects (command + stderr) on non-zero exit. */
  exec(ns: string, cmd: string, args?: readonly string[], timeoutMs?: number): Promise<string>;
  /** Spawns `ip netns exec <ns> <cmd> ...args` (ip execs the command, so the child's pid is the command's). Killed by destroy(). */
  spawnIn(ns: string, cmd: string, args?: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Packets dropped so far by the NAT's "unsolicited inbound" rules (INPUT + FORWARD) in `natA` or `natB`. */
  droppedInbound(natNs: string): Promise<number>;
  /** Starts coturn in `public` on `publicServer` and resolves once its UDP listener is open. Stopped by destroy(). */
  startTurnServer(opts?: TurnServerOptions): Promise<TurnServer>;
  /** Kills processes started in the rig and deletes its namespaces (and with them all veths). Idempotent. */
  destroy(): Promise<void>;
}

export type NetnsAvailability = { ok: true } | { ok: false; reason: string };

const PREFIX = 'iceagent-';
const WAN = 'wan';
const LAN = 'lan';

export const ADDRESSES = {
  publicServer: '203.0.113.10',
  publicServer2: '203.0.113.11',
  natAOutside: '203.0.113.1',
  natBOutside: '203.0.113.2',
  natAInside: '198.51.100.1', // 198.51.100.0/26: A's LAN
  natBInside: '198.51.100.65', // 198.51.100.64/26: B's LAN
  hostAAddress: '198.51.100.2',
  hostBAddress: '198.51.100.66',
} as const;

/** Runs a command without a shell; rejects with the command line, exit status and stderr. */
export function run(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const status = err.killed ? `killed (${err.signal ?? 'timeout'})` : `exit ${err.code ?? err.signal}`;
      reject(new Error(`\`${[cmd, ...args].join(' ')}\` failed: ${status}: ${String(stderr).trim() || err.message}`));
    });
  });
}

const ip = (args: readonly string[]) => run('ip', args);

async function listNamespaces(): Promise<string[]> {
  // Lines look like "name (id: 3)" or just "name".
  return (await ip(['netns', 'list'])).split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
}

/** SIGKILLs whatever still runs inside `ns` (by pid), then deletes the namespace. Missing namespace = success. */
async function deleteNamespace(ns: string): Promise<void> {
  let pids: string[] = [];
  try {
    pids = (await ip(['netns', 'pids', ns])).split(/\s+/).filter(Boolean);
  } catch (e) {
    if (!(await listNamespaces()).includes(ns)) return; // already gone
    throw e;
  }
  for (const pid of pids) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already exited */ }
  }
  try {
    await ip(['netns', 'del', ns]);
  } catch (e) {
    if ((await listNamespaces()).includes(ns)) throw e;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes `iceagent-*` namespaces left behind by earlier runs: those whose creating process (the pid in the name)
 * is gone, or whose name carries no pid. Rigs of live processes (e.g. test files running concurrently) are left
 * alone. Resolves with the names deleted.
 */
export async function cleanupStale(): Promise<string[]> {
  const stale = (await listNamespaces()).filter((ns) => {
    if (!ns.startsWith(PREFIX)) return false;
    const m = /^iceagent-(\d+)-/.exec(ns);
    return !m || !pidAlive(Number(m[1]));
  });
  for (const ns of stale) await deleteNamespace(ns);
  return stale;
}

/** Checks that this process can create namespaces, veths, a bridge and iptables NAT rules; says why not. */
export async function netnsAvailable(): Promise<NetnsAvailability> {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (platform is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: `network namespaces need root (uid is ${process.getuid?.()})` };
  const ns = `${PREFIX}${process.pid}-${randomBytes(2).toString('hex')}-probe`;
  try {
    await ip(['netns', 'add', ns]);
  } catch (e) {
    return { ok: false, reason: `cannot create a network namespace: ${(e as Error).message}` };
  }
  try {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'v0', '-j', 'MASQUERADE', '--random-fully']);
    await run('ip', ['netns', 'exec', ns, 'iptables', '-w', '-A', 'INPUT', '-i', 'v0', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP']);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `network namespace is not usable: ${(e as Error).message}` };
  } finally {
    await deleteNamespace(ns).catch(() => {});
  }
}

// Rigs alive in this process; torn down synchronously if the process exits without destroy() (e.g. a crash).
const liveRigs = new Set<{ namespaces: readonly string[]; children: Set<ChildProcess>; tempDirs: Set<string> }>();
let rigCounter = 0;
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const rig of liveRigs) {
      for (const c of rig.children) try { c.kill('SIGKILL'); } catch { /* gone */ }
      for (const ns of rig.namespaces) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
      for (const dir of rig.tempDirs) rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** NAT rules for one NAT namespace; exported so tests/reports can show exactly what runs. */
export function natRules(behaviour: NatBehaviour): string[][] {
  const masquerade = ['-t', 'nat', '-A', 'POSTROUTING', '-o', WAN, '-j', 'MASQUERADE'];
  return [
    behaviour === 'symmetric' ? [...masquerade, '--random-fully'] : masquerade,
    // Filtering: anything arriving on the outside that is not a reply to (or ICMP error for) a flow opened from the
    // inside is dropped silently. Dropping before conntrack confirmation also means the unsolicited packet leaves no
    // conntrack entry behind that could later clash with (and re-port) the inside host's own mapping.
    ['-A', 'INPUT', '-i', WAN, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'],
    ['-A', 'FORWARD', '-i', WAN, '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'],
  ];
}

export async function createNatRig(options: NatRigOptions): Promise<NatRig> {
  for (const [k, v] of Object.entries(options)) {
    if (v !== 'eim' && v !== 'symmetric') throw new Error(`createNatRig: ${k} must be 'eim' or 'symmetric', got ${String(v)}`);
  }
  // pid first (cleanupStale() uses it), then a per-process counter and some randomness.
  const id = `${PREFIX}${process.pid}-${(rigCounter++).toString(36)}${randomBytes(2).toString('hex')}`;
  const names = { public: `${id}-pub`, natA: `${id}-nata`, natB: `${id}-natb`, hostA: `${id}-hosta`, hostB: `${id}-hostb` };
  const namespaces = Object.values(names);
  const children = new Set<ChildProcess>();
  const tempDirs = new Set<string>(); // removed by destroy()
  const entry = { namespaces, children, tempDirs };
  installExitHook();
  liveRigs.add(entry);

  const assertOwn = (ns: string) => {
    if (!namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of rig ${id} (${namespaces.join(', ')})`);
  };
  const exec = async (ns: string, cmd: string, args: readonly string[] = [], timeoutMs?: number) => {
    assertOwn(ns);
    return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  };
  const spawnIn = (ns: string, cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}) => {
    assertOwn(ns);
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], opts);
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.once('error', () => children.delete(child));
    return child;
  };

  let destroying: Promise<void> | undefined;
  const destroy = () => (destroying ??= (async () => {
    await Promise.all([...children].map(killAndWait));
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    const errors: string[] = [];
    for (const ns of namespaces) await deleteNamespace(ns).catch((e: Error) => errors.push(e.message));
    liveRigs.delete(entry);
    if (errors.length) throw new Error(`destroying rig ${id}: ${errors.join('; ')}`);
  })());

  try {
    await build(names, options, exec);
  } catch (e) {
    await destroy().catch(() => {});
    throw e;
  }

  const rig: NatRig = {
    id,
    options: { ...options },
    ...names,
    namespaces,
    ...ADDRESSES,
    exec,
    spawnIn,
    droppedInbound: async (natNs) => {
      if (natNs !== names.natA && natNs !== names.natB) throw new Error(`droppedInbound: ${natNs} is not a NAT namespace of ${id}`);
      const saved = await exec(natNs, 'iptables-save', ['-c', '-t', 'filter']);
      let total = 0;
      for (const m of saved.matchAll(/^\[(\d+):\d+\] -A (?:INPUT|FORWARD) .*-j DROP$/gm)) total += Number(m[1]);
      return total;
    },
    startTurnServer: (opts) => startTurnServer(rig, tempDirs, opts),
    destroy,
  };
  return rig;
}

type Exec = (ns: string, cmd: string, args?: readonly string[]) => Promise<string>;

async function build(ns: { public: string; natA: string; natB: string; hostA: string; hostB: string }, options: NatRigOptions, exec: Exec) {
  const A = ADDRESSES;
  // Independent steps run in parallel (each `ip` call is ~10 ms; the rig needs ~50 of them).
  const addNamespace = async (n: string) => {
    await ip(['netns', 'add', n]);
    await ip(['-n', n, 'link', 'set', 'lo', 'up']);
    // IPv4-only rig: no link-local v6 addresses for ICE agents to gather, no router solicitations.
    await exec(n, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  };
  // The very first `ip netns add` on a machine turns /run/netns into a shared mount; never race that one.
  await addNamespace(ns.public);
  await Promise.all([ns.natA, ns.natB, ns.hostA, ns.hostB].map(addNamespace));

  // The "internet": a bridge in `public` carrying the server addresses and both NATs' outside interfaces.
  await ip(['-n', ns.public, 'link', 'add', 'br0', 'type', 'bridge']);
  await ip(['-n', ns.public, 'addr', 'add', `${A.publicServer}/24`, 'dev', 'br0']);
  await ip(['-n', ns.public, 'addr', 'add', `${A.publicServer2}/24`, 'dev', 'br0']);
  await ip(['-n', ns.public, 'link', 'set', 'br0', 'up']);

  const sides = [
    { nat: ns.natA, host: ns.hostA, port: 'port-a', outside: A.natAOutside, inside: A.natAInside, hostAddr: A.hostAAddress, behaviour: options.natA },
    { nat: ns.natB, host: ns.hostB, port: 'port-b', outside: A.natBOutside, inside: A.natBInside, hostAddr: A.hostBAddress, behaviour: options.natB },
  ];
  await Promise.all(sides.map(async (s) => {
    // veth public:port-x <-> nat:wan, created inside `public` with its peer placed straight into the NAT namespace.
    await ip(['-n', ns.public, 'link', 'add', s.port, 'type', 'veth', 'peer', 'name', WAN, 'netns', s.nat]);
    await ip(['-n', ns.public, 'link', 'set', s.port, 'master', 'br0']);
    await ip(['-n', ns.public, 'link', 'set', s.port, 'up']);
    // veth nat:lan <-> host:lan0
    await ip(['-n', s.nat, 'link', 'add', LAN, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', s.host]);

    await ip(['-n', s.nat, 'addr', 'add', `${s.outside}/24`, 'dev', WAN]);
    await ip(['-n', s.nat, 'addr', 'add', `${s.inside}/26`, 'dev', LAN]);
    await ip(['-n', s.nat, 'link', 'set', WAN, 'up']);
    await ip(['-n', s.nat, 'link', 'set', LAN, 'up']);
    await ip(['-n', s.host, 'addr', 'add', `${s.hostAddr}/26`, 'dev', 'lan0']);
    await ip(['-n', s.host, 'link', 'set', 'lan0', 'up']);
    await ip(['-n', s.host, 'route', 'add', 'default', 'via', s.inside]);
    // The NAT has no default route: it knows only 203.0.113.0/24 and its own /26, so the other LAN is unreachable.

    await exec(s.nat, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (const rule of natRules(s.behaviour)) await exec(s.nat, 'iptables', ['-w', ...rule]);
  }));
}

function killAndWait(child: ChildProcess, ms = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms); // the namespace deletion below SIGKILLs by pid anyway
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { child.kill('SIGKILL'); } catch { clearTimeout(timer); resolve(); }
  });
}

/**
 * Node one-liner (run inside a namespace) that sends a STUN Binding request to argv[1]:argv[2] every 50 ms and exits 0
 * at the first Binding success response, or 1 after argv[3] ms.
 */
const STUN_PING = `
const dgram = require('node:dgram');
const [host, port, ms] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
const req = Buffer.alloc(20);
req.writeUInt16BE(0x0001, 0); req.writeUInt32BE(0x2112a442, 4); require('node:crypto').randomFillSync(req, 8, 12);
s.on('message', (m) => { if (m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(req.subarray(8, 20))) process.exit(0); });
const send = () => s.send(req, Number(port), host);
setInterval(send, 50); send();
setTimeout(() => { console.error('no STUN response from ' + host + ':' + port + ' within ' + ms + ' ms'); process.exit(1); }, Number(ms));
`;

async function startTurnServer(rig: NatRig, tempDirs: Set<string>, opts: TurnServerOptions = {}): Promise<TurnServer> {
  const port = opts.port ?? 3478;
  const user = opts.user ?? 'iceagent';
  const password = opts.password ?? 'iceagent-secret';
  const realm = opts.realm ?? 'ice-agent.test';
  const timeoutMs = opts.timeoutMs ?? 5000;
  const address = rig.publicServer;
  const dir = mkdtempSync(join(tmpdir(), `${rig.id}-turn-`)); // coturn's sqlite userdb and pid file
  tempDirs.add(dir);
  const args = [
    '-n', // no config file
    '--listening-ip', address, '--relay-ip', address, '--listening-port', String(port),
    '--min-port', '49152', '--max-port', '65535',
    '--lt-cred-mech', '--user', `${user}:${password}`, '--realm', realm, '--fingerprint',
    '--no-tls', '--no-dtls', '--no-cli', '--no-tcp-relay',
    '--userdb', join(dir, 'turndb'), '--pidfile', join(dir, 'turnserver.pid'),
    '--log-file', 'stdout', '--simple-log',
    ...(opts.extraArgs ?? []),
  ];
  const child = rig.spawnIn(rig.public, 'turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  let exited: string | undefined;
  child.once('error', (e) => { exited = `cannot start turnserver: ${e.message}`; });
  child.once('exit', (code, sig) => { exited = `turnserver exited (${code ?? sig})`; });
  const stop = async () => {
    await killAndWait(child);
    rmSync(dir, { recursive: true, force: true });
  };
  // coturn 4.6 does not log when its UDP listener is open, so readiness = it answers a STUN Binding request.
  try {
    await rig.exec(rig.public, process.execPath, ['-e', STUN_PING, address, String(port), String(timeoutMs)], timeoutMs + 5000);
    if (exited) throw new Error(exited);
  } catch (e) {
    await stop();
    throw new Error(`turnserver did not come up: ${exited ?? (e as Error).message}\nargs: ${args.join(' ')}\n${output}`);
  }
  return { process: child, address, port, user, password, realm, log: () => output, stop };
}

// ------------------------------------------------------------------ static 1:1 NAT

/** The public address a static 1:1 NAT maps to host A (on NAT A's outside interface, beside 203.0.113.1). */
export const STATIC_NAT_PUBLIC = '203.0.113.20';

export interface StaticNat {
  /** The address the outside sees and reaches host A by. */
  readonly publicAddress: string;
  /** Host A's own address, behind the NAT. */
  readonly privateAddress: string;
  /** The iptables rules now in NAT A, as passed to `iptables -w`. */
  readonly rules: readonly string[][];
}

/**
 * The rules of a static 1:1 NAT (a cloud VM's public IP, a keepalived VIP):
 * every port of `publicAddress` is DNATed to `privateAddress` and the host's
 * traffic is SNATed back to it. No --random: ports are kept, so a socket's
 * port is the same on both sides and an announced host candidate
 * (`publicAddress`:port) is exactly where the host is reached. Anything from
 * outside addressed to the private range itself is dropped (the public
 * network has no route there anyway), and no other inside host goes out.
 */
export function staticNatRules(publicAddress: string, privateAddress: string): string[][] {
  return [
    ['-t', 'nat', '-A', 'PREROUTING', '-i', WAN, '-d', publicAddress, '-j', 'DNAT', '--to-destination', privateAddress],
    ['-t', 'nat', '-A', 'POSTROUTING', '-o', WAN, '-s', privateAddress, '-j', 'SNAT', '--to-source', publicAddress],
    ['-A', 'FORWARD', '-i', WAN, '-d', '198.51.100.0/24', '-m', 'conntrack', '!', '--ctstate', 'DNAT', '-j', 'DROP'],
    ['-A', 'FORWARD', '-o', WAN, '!', '-s', privateAddress, '-j', 'DROP'],
  ];
}

/**
 * Turns NAT A of a rig into a static 1:1 NAT for host A: the rig's
 * MASQUERADE and filtering rules in NAT A are flushed and replaced by
 * `staticNatRules`, and `publicAddress` is added to NAT A's outside
 * interface (so that it answers ARP for it on the public bridge). Only NAT A's
 * own namespace changes; `destroy()` removes it all with the rig. The
 * "public host" is the rig's `public` namespace (`publicServer`, 203.0.113.10).
 */
export async function addStaticNat(rig: NatRig, publicAddress: string = STATIC_NAT_PUBLIC): Promise<StaticNat> {
  if (!publicAddress.startsWith('203.0.113.')) throw new Error(`addStaticNat: ${publicAddress} is not in 203.0.113.0/24, the rig's public range`);
  const privateAddress = rig.hostAAddress;
  for (const flush of [['-t', 'nat', '-F'], ['-F', 'INPUT'], ['-F', 'FORWARD']]) await rig.exec(rig.natA, 'iptables', ['-w', ...flush]);
  await rig.exec(rig.natA, 'ip', ['addr', 'add', `${publicAddress}/32`, 'dev', WAN]);
  const rules = staticNatRules(publicAddress, privateAddress);
  for (const rule of rules) await rig.exec(rig.natA, 'iptables', ['-w', ...rule]);
  return { publicAddress, privateAddress, rules };
}

// ------------------------------------------------------------------ UDP blocked (ICE-TCP)

/** The rule `blockUdp` inserts first in both NATs' FORWARD chains: every UDP datagram between the sides is dropped. */
export const BLOCK_UDP_RULE: readonly string[] = ['-p', 'udp', '-j', 'DROP'];

/**
 * A firewall that lets no UDP through, as some corporate networks and
 * carriers have: `BLOCK_UDP_RULE` first in the FORWARD chain of both NAT
 * namespaces, so nothing UDP crosses between host A, host B and the public
 * network (TCP still does). Only the rig's own NAT namespaces change.
 * Resolves with a reader of how many datagrams the two rules dropped so far.
 */
export async function blockUdp(rig: NatRig): Promise<() => Promise<number>> {
  for (const ns of [rig.natA, rig.natB]) await rig.exec(ns, 'iptables', ['-w', '-I', 'FORWARD', '1', ...BLOCK_UDP_RULE]);
  return async () => {
    let total = 0;
    for (const ns of [rig.natA, rig.natB]) {
      const saved = await rig.exec(ns, 'iptables-save', ['-c', '-t', 'filter']);
      for (const m of saved.matchAll(/^\[(\d+):\d+\] -A FORWARD -p udp -j DROP$/gm)) total += Number(m[1]);
    }
    return total;
  };
}
