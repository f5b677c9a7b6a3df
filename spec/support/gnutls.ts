/**
 * Test helper: a real DTLS server, GnuTLS's `gnutls-serv --udp --echo` with
 * a PSK password file (Debian package `gnutls-bin`), and an in-process
 * forwarder that relays an ICE component to it.
 *
 * gnutls-serv 3.7 has no listen-address option: it binds the wildcard
 * (0.0.0.0 and ::) on the port given. The tests only ever send to it on
 * 127.0.0.1, on a free high port, and stop it afterwards.
 *
 * It serves one DTLS session at a time; a client that stops mid-handshake
 * (wrong PSK, abort) leaves it waiting for that session until its own
 * handshake timeout, so each such test starts its own server.
 *
 * startGnutls() resolves once gnutls-serv says it listens on IPv4. No sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from '../../lib/index.js';

export const GNUTLS_SERV = '/usr/bin/gnutls-serv';

export function gnutlsAvailable(): boolean {
  return existsSync(GNUTLS_SERV);
}

/** Plain PSK plus the ECDHE/DHE PSK key exchanges (node-dtls-client does plain PSK; the others are there to be declined). */
export const PSK_PRIORITY = 'NORMAL:+PSK:+ECDHE-PSK:+DHE-PSK';

export interface GnutlsOptions {
  /** identity → key as hex (the pskpasswd file format); default { alice: 32 hex digits }. */
  users?: Record<string, string>;
  /** `--priority` (default PSK_PRIORITY). */
  priority?: string;
  /** `--pskhint`: the server then sends a ServerKeyExchange with the hint. */
  hint?: string;
  /** How long to wait for it to listen (default 10000 ms). */
  readyTimeoutMs?: number;
}

export interface Gnutls {
  readonly port: number;
  readonly users: Readonly<Record<string, string>>;
  /** Everything it printed (stdout and stderr), the last 64 KiB. */
  output(): string;
  stop(): Promise<void>;
}

export const DEFAULT_USERS = { alice: '00112233445566778899aabbccddeeff' };

/** A UDP port free on 127.0.0.1 and the wildcard right now (gnutls-serv binds both families' wildcards). */
async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '0.0.0.0', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function startOnce(opts: GnutlsOptions, port: number, dir: string): Promise<Gnutls> {
  const users = opts.users ?? DEFAULT_USERS;
  const pskFile = join(dir, 'psk.txt');
  writeFileSync(pskFile, Object.entries(users).map(([id, key]) => `${id}:${key}\n`).join(''), { mode: 0o600 });
  const args = ['--udp', '--echo', '--nodb', '--disable-client-cert', '--pskpasswd', pskFile, '--priority', opts.priority ?? PSK_PRIORITY, '-p', String(port)];
  if (opts.hint !== undefined) args.push('--pskhint', opts.hint);
  const child: ChildProcess = spawn(GNUTLS_SERV, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString('latin1');
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`gnutls-serv did not listen within ${opts.readyTimeoutMs ?? 10000} ms:\n${out}`)), opts.readyTimeoutMs ?? 10000);
    const check = () => {
      if (/listening on IPv4 [\d.]+ port \d+\.\.\.done/.test(out)) done();
    };
    const onExit = (code: number | null) => done(new Error(`gnutls-serv exited (${code}) before listening:\n${out}`));
    function done(err?: Error) {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
      if (err) {
        child.kill('SIGKILL');
        reject(err);
      } else resolve();
    }
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', onExit);
    check();
  });
  let stopping: Promise<void> | undefined;
  return {
    port,
    users,
    output: () => out,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
          await exited;
          clearTimeout(kill);
        }
      })();
      return stopping;
    },
  };
}

/** Starts gnutls-serv on a free port (a few tries, in case another process takes the port first). */
export async function startGnutls(opts: GnutlsOptions = {}): Promise<Gnutls> {
  if (!gnutlsAvailable()) throw new Error(`${GNUTLS_SERV} is missing (Debian: apt-get install gnutls-bin)`);
  const dir = mkdtempSync(join(tmpdir(), 'ice-agent-gnutls-'));
  let last: Error | undefined;
  try {
    for (let i = 0; i < 5; i++) {
      try {
        const g = await startOnce(opts, await freePort(), dir);
        const stop = g.stop.bind(g);
        return { ...g, output: g.output, stop: async () => { await stop(); rmSync(dir, { recursive: true, force: true }); } };
      } catch (err) {
        last = err as Error;
        if (!/bind|address already in use/i.test(last.message)) break;
      }
    }
  } catch (err) {
    last = err as Error;
  }
  rmSync(dir, { recursive: true, force: true });
  throw last ?? new Error('gnutls-serv did not start');
}

export interface Forwarder {
  /** Datagrams relayed component → service and back. */
  readonly toService: number;
  readonly fromService: number;
  close(): Promise<void>;
}

/**
 * Relays every datagram of a component to UDP 127.0.0.1:`port` and the
 * service's answers back over the component, as `ice-agent-peer --forward`
 * does: a socket bound to 127.0.0.1 and connected to the service, so that
 * only its answers are taken.
 */
export async function forwardComponent(agent: Agent, streamId: number, componentId: number, port: number, host = '127.0.0.1'): Promise<Forwarder> {
  const udp = dgram.createSocket('udp4');
  udp.on('error', () => {}); // ICMP port unreachable while the service is down: the datagram is simply lost
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => udp.connect(port, host, () => r()));
  const cs = agent.createSocket(streamId, componentId);
  const stats = { toService: 0, fromService: 0 };
  cs.on('message', (data) => {
    stats.toService++;
    udp.send(data);
  });
  udp.on('message', (data) => {
    stats.fromService++;
    cs.send(data);
  });
  let closing: Promise<void> | undefined;
  return {
    get toService() {
      return stats.toService;
    },
    get fromService() {
      return stats.fromService;
    },
    close() {
      closing ??= new Promise<void>((r) => {
        cs.close();
        udp.close(() => r());
      });
      return closing;
    },
  };
}

/**
 * OpenSSL's `s_server -dtls1_2` with a PSK and no certificate, on
 * 127.0.0.1, for one session: unlike gnutls-serv (whose UDP server drops a
 * failed handshake silently) it sends a fatal alert when the handshake
 * fails, e.g. handshake_failure (40) when no cipher suite is shared.
 */
export async function startOpensslDtls(opts: { identity?: string; key?: string; cipher: string }): Promise<{ port: number; output(): string; stop(): Promise<void> }> {
  const openssl = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find((p) => existsSync(p));
  if (!openssl) throw new Error('openssl is missing (Debian: apt-get install openssl)');
  const port = await freePort();
  const child = spawn(openssl, ['s_server', '-dtls1_2', '-naccept', '1', '-nocert', '-psk', opts.key ?? DEFAULT_USERS.alice,
    '-psk_identity', opts.identity ?? 'alice', '-cipher', `${opts.cipher}:@SECLEVEL=0`, '-accept', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('latin1')));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`openssl s_server did not start:\n${out}`)), 10_000);
    const check = () => {
      if (/ACCEPT/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`openssl s_server exited:\n${out}`));
    });
  });
  return {
    port,
    output: () => out,
    async stop() {
      child.stdin!.end();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
