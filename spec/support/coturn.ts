/**
 * Test helper: a real coturn (`/usr/bin/turnserver`, Debian package `coturn`)
 * with its own generated configuration in a temp dir, listening on 127.0.0.1
 * (or on the addresses given, e.g. inside a network namespace) and never
 * anywhere else.
 *
 * startCoturn() resolves once coturn is ready: its log says the listeners are
 * open and (outside a namespace) a STUN Binding request is answered. No fixed
 * sleeps. The log is kept in memory so tests can prove traffic went through
 * coturn (`count(/.../)`, `waitForLog(/.../)`).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export const TURNSERVER = '/usr/bin/turnserver';
const OPENSSL_CANDIDATES = ['/usr/bin/openssl', '/usr/local/bin/openssl'];

export function coturnAvailable(): boolean {
  return existsSync(TURNSERVER);
}

export function opensslPath(): string | undefined {
  return OPENSSL_CANDIDATES.find((p) => existsSync(p));
}

export interface CoturnOptions {
  /** Address coturn listens on (default 127.0.0.1). */
  listen?: string;
  /** Address relayed sockets are bound on (default: `listen`). */
  relay?: string;
  /** Run inside this network namespace (`ip netns exec NAME turnserver …`). */
  netns?: string;
  /** Listening port; default a free one (3478 inside a namespace, where nothing else runs). */
  port?: number;
  /** Also listen for TLS (`turns:`), with a freshly generated self-signed certificate. */
  tls?: boolean;
  /** TLS listening port; default a free one (5349 inside a namespace). */
  tlsPort?: number;
  realm?: string;
  /** Long-term credential users (default { alice: 'secret' }). */
  users?: Record<string, string>;
  /** Relay port range (default a random block of 200 ports in 40000-47999). */
  minPort?: number;
  maxPort?: number;
  /** `max-allocate-lifetime` in seconds (coturn's default 3600). */
  maxAllocateLifetime?: number;
  /** `permission-lifetime` in seconds (default 300). */
  permissionLifetime?: number;
  /** `channel-lifetime` in seconds (default 600). */
  channelLifetime?: number;
  /** `stale-nonce=N`: nonces expire after N seconds (so clients meet 438). */
  staleNonce?: number;
  /** `user-quota`: concurrent allocations per user. */
  userQuota?: number;
  /** `total-quota`: concurrent allocations in all. */
  totalQuota?: number;
  /** Extra configuration lines, verbatim. */
  extra?: string[];
  /** How long to wait for readiness (default 10000 ms). */
  readyTimeoutMs?: number;
}

export interface Coturn {
  /** turn: URL over UDP. */
  readonly url: string;
  /** turn: URL over TCP. */
  readonly tcpUrl: string;
  /** turns: URL (only with `tls`). */
  readonly tlsUrl: string | undefined;
  /** stun: URL. */
  readonly stunUrl: string;
  readonly host: string;
  readonly port: number;
  readonly tlsPort: number | undefined;
  /** The self-signed certificate (PEM) to trust for TLS. */
  readonly ca: Buffer | undefined;
  readonly realm: string;
  /** The first user's credentials. */
  readonly username: string;
  readonly password: string;
  readonly relayIp: string;
  readonly relayRange: { min: number; max: number };
  readonly dir: string;
  readonly pid: number | undefined;
  /** Everything coturn has logged so far. */
  log(): string;
  /** Number of log lines matching `re`. */
  count(re: RegExp): number;
  /** Resolves with the first log line matching `re` (already logged or future), rejects after `ms`. */
  waitForLog(re: RegExp, ms?: number): Promise<string>;
  /** Resolves once at least `n` log lines match `re`, rejects after `ms`. */
  waitForCount(re: RegExp, n: number, ms?: number): Promise<void>;
  /** Kills coturn and waits for it to exit; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A port free for both TCP and UDP on `host`, as the kernel hands out. */
async function freePort(host: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const srv = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen({ host, port: 0, exclusive: true }, () => resolve((srv.address() as net.AddressInfo).port));
    });
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const udpOk = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind({ address: host, port, exclusive: true }, () => resolve(true));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    await new Promise<void>((r) => srv.close(() => r()));
    if (udpOk) return port;
  }
  throw new Error(`no port free for both TCP and UDP on ${host}`);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _stdout, stderr) => (err ? reject(new Error(`${cmd} failed: ${stderr || err.message}`)) : resolve()));
  });
}

/** A STUN Binding request to `host:port` over UDP, retransmitted every 100 ms until answered or `ms` pass. */
function stunPing(host: string, port: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0);
    req.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(req, 8);
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearInterval(retx);
      clearTimeout(deadline);
      sock.close(() => (err ? reject(err) : resolve()));
    };
    sock.on('error', () => {}); // ICMP unreachable before coturn binds: keep trying.
    sock.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(req.subarray(8, 20))) finish();
    });
    const send = () => sock.send(req, port, host, () => {});
    const retx = setInterval(send, 100);
    const deadline = setTimeout(() => finish(new Error(`coturn at ${host}:${port} did not answer a STUN Binding request within ${ms} ms`)), ms);
    sock.bind(0, net.isIPv6(host) ? '::1' : '127.0.0.1', send);
  });
}

export async function startCoturn(opts: CoturnOptions = {}): Promise<Coturn> {
  let lastErr: unknown;
  // A port found free can be taken again before coturn binds it; try another.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastErr = err;
      if (opts.port !== undefined || opts.netns !== undefined) break;
    }
  }
  throw lastErr;
}

async function startOnce(opts: CoturnOptions): Promise<Coturn> {
  if (!coturnAvailable()) throw new Error(`${TURNSERVER} not found (Debian package coturn)`);
  const listen = opts.listen ?? '127.0.0.1';
  const relayIp = opts.relay ?? listen;
  const inNs = opts.netns !== undefined;
  const port = opts.port ?? (inNs ? 3478 : await freePort(listen));
  let tlsPort: number | undefined;
  if (opts.tls) tlsPort = opts.tlsPort ?? (inNs ? 5349 : await freePort(listen));
  const minPort = opts.minPort ?? 40000 + 200 * Math.floor(Math.random() * 40);
  const maxPort = opts.maxPort ?? minPort + 199;
  const realm = opts.realm ?? 'ice-agent.test';
  const users = opts.users ?? { alice: 'secret' };
  const [username, password] = Object.entries(users)[0] ?? ['', ''];
  const dir = mkdtempSync(join(tmpdir(), 'coturn-'));

  let ca: Buffer | undefined;
  const conf: string[] = [
    `listening-ip=${listen}`,
    `relay-ip=${relayIp}`,
    `listening-port=${port}`,
    `min-port=${minPort}`,
    `max-port=${maxPort}`,
    'lt-cred-mech',
    `realm=${realm}`,
    ...Object.entries(users).map(([u, p]) => `user=${u}:${p}`),
    // coturn keeps users in a SQLite db as well; keep it out of /var/lib/turn.
    `userdb=${join(dir, 'turndb')}`,
    'no-dtls',
    'no-cli',
    'no-multicast-peers',
    // Without this coturn refuses to relay to 127.0.0.1 peers (403).
    'allow-loopback-peers',
    // No RFC 5780 alternate port (it would bind port+1 as well).
    'no-rfc5780',
    'log-file=stdout',
    'simple-log',
    // Verbose: the listener lines (readiness) and the session lines (allocations, refreshes, closes) are logged.
    'verbose',
    `pidfile=${join(dir, 'turnserver.pid')}`,
  ];
  if (opts.tls) {
    const openssl = opensslPath();
    if (!openssl) throw new Error('openssl not found: cannot make a certificate for TLS');
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const san = ['DNS:localhost', `IP:${listen}`, ...(listen !== '127.0.0.1' ? ['IP:127.0.0.1'] : [])].join(',');
    await run(openssl, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', `subjectAltName=${san}`,
    ]);
    ca = readFileSync(cert);
    conf.push(`tls-listening-port=${tlsPort}`, `cert=${cert}`, `pkey=${key}`);
  } else {
    conf.push('no-tls');
  }
  if (opts.maxAllocateLifetime !== undefined) conf.push(`max-allocate-lifetime=${opts.maxAllocateLifetime}`);
  if (opts.permissionLifetime !== undefined) conf.push(`permission-lifetime=${opts.permissionLifetime}`);
  if (opts.channelLifetime !== undefined) conf.push(`channel-lifetime=${opts.channelLifetime}`);
  if (opts.staleNonce !== undefined) conf.push(`stale-nonce=${opts.staleNonce}`);
  if (opts.userQuota !== undefined) conf.push(`user-quota=${opts.userQuota}`);
  if (opts.totalQuota !== undefined) conf.push(`total-quota=${opts.totalQuota}`);
  conf.push(...(opts.extra ?? []));
  const confPath = join(dir, 'turnserver.conf');
  writeFileSync(confPath, conf.join('\n') + '\n');

  const cmd = inNs ? 'ip' : TURNSERVER;
  const args = inNs ? ['netns', 'exec', opts.netns!, TURNSERVER, '-c', confPath] : ['-c', confPath];
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let log = '';
  const watchers = new Set<() => void>();
  const onOut = (chunk: Buffer) => {
    log += chunk.toString('utf8');
    for (const w of watchers) w();
  };
  child.stdout!.on('data', onOut);
  child.stderr!.on('data', onOut);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    for (const w of watchers) w();
    resolve();
  }));
  // Never leave a coturn behind, even if the test process dies early.
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const lines = () => log.split('\n');
  const count = (re: RegExp) => lines().filter((l) => re.test(l)).length;
  /** Resolves when `cond()` holds after some output (or now), rejects after `ms` or if coturn exits. */
  const waitUntil = <T>(cond: () => T | undefined, what: string, ms: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = cond();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (exited) {
          done();
          reject(new Error(`coturn exited before ${what}; log:\n${log.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`coturn: no ${what} within ${ms} ms; log:\n${log.slice(-3000)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        watchers.delete(check);
      };
      watchers.add(check);
      check();
    });
  const waitForLog = (re: RegExp, ms = 5000): Promise<string> =>
    waitUntil(() => lines().find((l) => re.test(l)), `log line ${re}`, ms);
  const waitForCount = (re: RegExp, n: number, ms = 5000): Promise<void> =>
    waitUntil(() => (count(re) >= n ? true : undefined), `${n} log lines ${re}`, ms).then(() => undefined);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        // coturn exits promptly on SIGTERM; SIGKILL only if it hangs.
        const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(hard);
      }
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const readyMs = opts.readyTimeoutMs ?? 10000;
  const hostInUrl = net.isIPv6(listen) ? `[${listen}]` : listen;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  try {
    await waitForLog(new RegExp(`UDP listener opened on\\s*:\\s*${esc(listen)}:${port}\\b`), readyMs);
    await waitForLog(new RegExp(`TCP listener opened on\\s*:\\s*${esc(listen)}:${port}\\b`), readyMs);
    if (tlsPort !== undefined) await waitForLog(new RegExp(`(TLS|TCP)[^\\n]*listener opened on\\s*:\\s*${esc(listen)}:${tlsPort}\\b`), readyMs);
    // The log line is written once the socket is open; a Binding round trip proves coturn also serves it.
    if (!inNs) await stunPing(listen, port, readyMs);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: `turn:${hostInUrl}:${port}`,
    tcpUrl: `turn:${hostInUrl}:${port}?transport=tcp`,
    tlsUrl: tlsPort !== undefined ? `turns:${hostInUrl}:${tlsPort}` : undefined,
    stunUrl: `stun:${hostInUrl}:${port}`,
    host: listen,
    port,
    tlsPort,
    ca,
    realm,
    username,
    password,
    relayIp,
    relayRange: { min: minPort, max: maxPort },
    dir,
    pid: child.pid,
    log: () => log,
    count,
    waitForLog,
    waitForCount,
    stop,
  };
}
