/**
 * DTLS over an ICE component (lib/dtls/, agent.connectDtls), against a real
 * DTLS server: GnuTLS's gnutls-serv (`--udp --echo --pskpasswd`) on loopback,
 * reached through a second agent that forwards its component to it.
 *
 * - in process: two agents, handshake and echo, the RFC 7983 demultiplexing,
 *   STUN and consent beside DTLS, the in-memory and loopback shims, and every
 *   failure as a typed DtlsError with nothing (socket, timer) left behind;
 * - the CLI peers (dist/examples/peer.js): `--dtls-psk` against `--forward`
 *   of ours and of libnice (spec/interop/libnice-peer.py), a wrong PSK.
 *
 * gnutls-serv's UDP echo reads at most 254 bytes at a time (udp-serv.c,
 * MAX_BUFFER 255) and echoes a longer record as several, losing some under a
 * window: the data phases here use records of 200 bytes.
 *
 * Skipped only when gnutls-serv is missing outside CI (.ci/run installs gnutls-bin).
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, DtlsError, DtlsSocket, InvalidArgumentError, InvalidStateError, UnknownStreamError } from '../lib/index.js';
import { isDtlsRecord, readRecords } from '../lib/dtls/records.js';
import { alertName } from '../lib/dtls/errors.js';
import { LOOPBACK, makePair, exchangeCandidates, waitState, closeAll, trackHandles, deadPort, filteredNetwork, until, type Pair } from './helpers.js';
import { startGnutls, startOpensslDtls, forwardComponent, gnutlsAvailable, DEFAULT_USERS, type Gnutls } from './support/gnutls.js';
import { staleBuild, tail } from './support/build.js';
import { runPair, firstOf } from '../examples/relay.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PEER = join(ROOT, 'dist/examples/peer.js');
const LIBNICE_PEER = join(ROOT, 'spec/interop/libnice-peer.py');
const PYTHON = '/usr/bin/python3';
const KEY = Buffer.from(DEFAULT_USERS.alice, 'hex');
const PSK = { alice: KEY };
const WRONG = { alice: Buffer.from('ffeeddccbbaa99887766554433221100', 'hex') };
const SIZE = 200;
const inCI = Boolean(process.env.CI);
const haveGnutls = gnutlsAvailable();
const skip = !haveGnutls && !inCI ? 'gnutls-serv is missing (Debian: apt-get install gnutls-bin; .ci/run installs it)' : false;
if (!haveGnutls && inCI) t.fail('gnutls-serv is missing in CI: .ci/run must install gnutls-bin');

// ----------------------------------------------------------------- helpers

/**
 * Teardowns still running. tap may start the next test before a teardown's
 * promise settles; a test that counts handles first waits for these, so
 * that the timers of another test's teardown (a server's kill timer, an
 * agent's close) do not count as its own.
 */
const cleanups = new Set<Promise<unknown>>();
function cleanup(t: Test, fn: () => unknown): void {
  t.teardown(() => {
    const p = Promise.resolve(fn());
    cleanups.add(p);
    return p.finally(() => cleanups.delete(p));
  });
}
async function tracked(t: Test): Promise<ReturnType<typeof trackHandles>> {
  await Promise.allSettled([...cleanups]);
  await new Promise((r) => setImmediate(r));
  const handles = trackHandles();
  t.teardown(() => handles.stop());
  return handles;
}

async function readyPair(optsA = {}, optsB = {}): Promise<Pair> {
  const p = await makePair({ nominationMode: 'aggressive', ...optsA }, optsB);
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  return p;
}

/** A ready pair whose controlled side forwards its component to gnutls-serv. */
async function rig(t: Test, g: { port: number }, optsA = {}) {
  const p = await readyPair(optsA);
  const fw = await forwardComponent(p.b, 1, 1, g.port);
  cleanup(t, async () => {
    await fw.close();
    await closeAll(p.a, p.b);
  });
  return { ...p, fw };
}

async function gnutls(t: Test, opts: Parameters<typeof startGnutls>[0] = {}): Promise<Gnutls> {
  const g = await startGnutls(opts);
  cleanup(t, () => g.stop());
  return g;
}

function record(seq: number, size = SIZE): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 0x80;
  b.writeUInt32BE(seq, 1);
  return b;
}

/** Sends `n` records one at a time and resolves with how many came back. */
async function echo(d: DtlsSocket, n: number): Promise<number> {
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo: ${got}/${n} after 10 s`)), 10_000);
    const on = (m: Buffer) => {
      if (m[0] !== 0x80 || m.readUInt32BE(1) !== got) return;
      got++;
      if (got === n) {
        clearTimeout(timer);
        d.off('message', on);
        resolve();
      } else d.send(record(got));
    };
    d.on('message', on);
    d.send(record(0));
  });
  return got;
}

/** The loopback UDP sockets of this process: local addresses from /proc/net/udp (hex ip:port). */
function udpSockets(): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]) out.add(f[1]);
  }
  return out;
}

// ---------------------------------------------------------------- pure parts

t.test('RFC 7983: DTLS is first byte 20-63, nothing else', async (t) => {
  const cases: Array<[number, boolean]> = [[0, false], [1, false], [3, false], [16, false], [19, false], [20, true], [21, true], [22, true],
    [23, true], [63, true], [64, false], [79, false], [128, false], [191, false], [255, false]];
  for (const [b, want] of cases) t.equal(isDtlsRecord(Buffer.from([b, 0xfe, 0xfd])), want, `first byte ${b}`);
  t.equal(isDtlsRecord(Buffer.alloc(0)), false, 'an empty datagram');
  // A ServerHello record, and an alert after it in the same datagram.
  const hello = Buffer.concat([
    Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 51]),
    Buffer.from([2, 0, 0, 38, 0, 1, 0, 0, 0, 0, 0, 38]),
    Buffer.from([0xfe, 0xfd]), Buffer.alloc(32), Buffer.from([0, 0x00, 0xa8, 0, 0]),
  ]);
  const alert = Buffer.from([21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 2, 40]);
  t.match(readRecords(Buffer.concat([hello, alert])), [
    { type: 22, epoch: 0, handshakeType: 2, cipherSuite: 0xa8 },
    { type: 21, epoch: 0, alertLevel: 2, alertDescription: 40 },
  ], 'records, ServerHello cipher suite and a plaintext alert are read');
  t.same(readRecords(hello.subarray(0, 20)), [], 'a truncated record is not read');
  t.equal(alertName(115), 'unknown_psk_identity');
});

t.test('argument errors throw at once, naming the argument', async (t) => {
  const p = await readyPair();
  cleanup(t, () => closeAll(p.a, p.b));
  const bad: Array<[string, unknown]> = [
    ['psk', {}], ['psk', { a: KEY, b: KEY }], ['psk', { '': KEY }], ['psk', { a: 5 }], ['psk', { a: '' }],
    ['ciphers', ['TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256']], ['ciphers', []], ['timeout', 0], ['timeout', -1], ['transport', 'tcp'],
  ];
  for (const [field, value] of bad) {
    const opts = { psk: PSK, [field]: value } as Parameters<Agent['connectDtls']>[2];
    t.throws(() => p.a.connectDtls(1, 1, opts), InvalidArgumentError, `${field} = ${JSON.stringify(value)}`);
  }
  t.throws(() => p.a.connectDtls(1, 1, undefined as never), InvalidArgumentError, 'no options');
  t.throws(() => p.a.connectDtls(7, 1, { psk: PSK }), UnknownStreamError, 'an unknown stream');
  t.throws(() => p.a.connectDtls(1, 2, { psk: PSK }), UnknownStreamError, 'an unknown component');
  await p.a.close();
  t.throws(() => p.a.connectDtls(1, 1, { psk: PSK }), InvalidStateError, 'a closed agent');
});

// ------------------------------------------------------- against gnutls-serv

t.test('handshake and echo through an agent that forwards to gnutls-serv; close leaves nothing behind', { skip }, async (t) => {
  const g = await gnutls(t);
  const handles = await tracked(t);
  const p = await readyPair();
  const fw = await forwardComponent(p.b, 1, 1, g.port);
  const udpBefore = process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
  const t0 = performance.now();
  const d = await p.a.connectDtls(1, 1, { psk: PSK });
  t.comment(`handshake ${(performance.now() - t0).toFixed(1)} ms (${d.handshakeMs?.toFixed(1)} ms from the first ClientHello), ${d.cipherSuite}`);
  t.type(d, DtlsSocket);
  t.equal(d.transport, 'memory', 'the in-memory shim by default');
  t.match(d.cipherSuite, /^TLS_PSK_WITH_AES_/, 'a PSK suite was negotiated');
  t.equal(process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length, udpBefore, 'no socket of its own: no extra hop');
  const probe = p.a.createSocket(1, 1);
  t.same(d.remoteAddress(), probe.remoteAddress(), "remoteAddress() is the selected pair's");
  probe.close();
  t.equal(d.address().address, '127.0.0.1');
  t.equal(await echo(d, 100), 100, '100 records echoed by gnutls-serv, in order');
  t.ok(fw.toService >= 103 && fw.fromService >= 104, 'every record went through the forwarding agent');
  t.equal(d.stats.retransmissions, 0, 'no handshake retransmission on loopback');
  let closed = 0;
  d.on('close', () => closed++);
  await d.close();
  t.equal(closed, 1, "'close' once");
  t.ok(d.closed);
  await d.close();
  t.equal(d.send(record(1)), false, 'send after close: false');
  t.throws(() => d.send('x' as never), InvalidArgumentError);
  await until(() => fw.toService >= 104, 2000, 'close_notify relayed');
  await fw.close();
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('a server that sends a PSK identity hint (ServerKeyExchange)', { skip }, async (t) => {
  const g = await gnutls(t, { hint: 'ice-agent-test' });
  const r = await rig(t, g);
  const d = await r.a.connectDtls(1, 1, { psk: PSK, ciphers: ['TLS_PSK_WITH_AES_256_GCM_SHA384'] });
  t.equal(d.cipherSuite, 'TLS_PSK_WITH_AES_256_GCM_SHA384', 'the one suite offered');
  t.equal(await echo(d, 20), 20);
  await d.close();
});

t.test("transport 'loopback': a relay socket on 127.0.0.1, node-dtls-client's socket on 127.0.0.1", { skip }, async (t) => {
  const g = await gnutls(t);
  const handles = await tracked(t);
  const p = await readyPair();
  const fw = await forwardComponent(p.b, 1, 1, g.port);
  const before = udpSockets();
  const d = await p.a.connectDtls(1, 1, { psk: PSK, transport: 'loopback' });
  t.equal(d.transport, 'loopback');
  const added = [...udpSockets()].filter((s) => !before.has(s));
  t.equal(added.length, 2, 'two sockets: the relay and node-dtls-client\'s', { added });
  t.ok(added.every((s) => s.startsWith('0100007F:')), 'both bound to 127.0.0.1, none to the wildcard', { added });
  t.equal(await echo(d, 50), 50);
  await d.close();
  await until(() => !udpSockets().has(added[0]!) && !udpSockets().has(added[1]!), 2000, 'the two sockets closed');
  await fw.close();
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('RFC 7983: DTLS takes records only; RTP and other data go on to attachRecv and other sockets', { skip }, async (t) => {
  const g = await gnutls(t);
  const r = await rig(t, g);
  const rtp: Buffer[] = [];
  r.a.attachRecv(1, 1, (data) => {
    if (data[0]! >= 128) rtp.push(data);
  });
  const other = r.a.createSocket(1, 1);
  const seenByOther = { dtls: 0, rtp: 0, zrtp: 0 };
  other.on('message', (m) => {
    if (isDtlsRecord(m)) seenByOther.dtls++;
    else if (m[0]! >= 128) seenByOther.rtp++;
    else seenByOther.zrtp++;
  });
  const d = await r.a.connectDtls(1, 1, { psk: PSK });
  let dtlsMessages = 0;
  d.on('message', () => dtlsMessages++);
  // The forwarding agent sends RTP (0x80) and ZRTP-range (16) datagrams of its own while records are echoed.
  for (let i = 0; i < 20; i++) {
    const pkt = Buffer.alloc(40, i);
    pkt[0] = i % 2 ? 16 : 0x80;
    r.b.send(1, 1, pkt);
  }
  t.equal(await echo(d, 30), 30, 'the DTLS session goes on');
  await until(() => rtp.length === 10 && seenByOther.zrtp === 10, 2000, 'RTP and ZRTP delivered');
  t.equal(rtp.length, 10, 'attachRecv got every RTP datagram');
  t.equal(seenByOther.rtp, 10, 'another component socket got them too');
  t.ok(seenByOther.dtls >= 30, 'and the DTLS records (it sees every datagram)');
  t.equal(d.stats.notDtls, 20, 'the DTLS layer left the 20 non-DTLS datagrams alone');
  t.equal(dtlsMessages, 30, 'and emitted only decrypted records');
  other.close();
  await d.close();
});

t.test('STUN checks and consent freshness go on beside DTLS', { skip }, async (t) => {
  const g = await gnutls(t);
  const r = await rig(t, g, { consentInterval: 50 });
  const d = await r.a.connectDtls(1, 1, { psk: PSK });
  const before = r.a.getStats().consentChecksSent;
  await until(() => r.a.getStats().consentChecksSent > before + 3, 5000, 'consent checks go on');
  t.equal(await echo(d, 50), 50);
  t.ok(r.a.getStats().consentChecksSent > before + 3, 'consent checks kept going', { before, after: r.a.getStats().consentChecksSent });
  t.equal(r.a.getComponentState(1, 1), 'ready', 'the component stays ready');
  t.equal(d.stats.notDtls, 0, 'STUN never reaches the DTLS layer');
  await d.close();
});

// ----------------------------------------------------------------- failures

/** Every failure test: the promise rejects with a DtlsError of that reason within `within` ms, and nothing is left. */
async function expectFailure(t: Test, run: () => Promise<unknown>, reason: string, within: number, message?: RegExp): Promise<DtlsError | undefined> {
  const t0 = performance.now();
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  const ms = performance.now() - t0;
  t.type(err, DtlsError, 'a DtlsError');
  const e = err as DtlsError;
  t.equal(e?.reason, reason, `reason ${reason}`, { message: e?.message });
  t.equal(e?.code, 'ERR_ICE_DTLS');
  if (message) t.match(e?.message, message);
  // Not a hang (a liveness bound, not a performance figure: five times the expected time, for loaded machines).
  t.ok(ms < within * 5, `no hang: failed within ${within * 5} ms (${ms.toFixed(0)} ms)`);
  t.comment(`${reason}: ${e?.message}`);
  return err instanceof DtlsError ? err : undefined;
}

t.test('wrong PSK: a handshake DtlsError that says so, after the timeout, not a hang; nothing left', { skip }, async (t) => {
  const g = await gnutls(t);
  const handles = await tracked(t);
  const p = await readyPair();
  const fw = await forwardComponent(p.b, 1, 1, g.port);
  await expectFailure(t, () => p.a.connectDtls(1, 1, { psk: WRONG, timeout: 1500 }), 'handshake', 2500, /wrong PSK or identity/);
  await fw.close();
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('an unknown identity fails the same way', { skip }, async (t) => {
  const g = await gnutls(t);
  const r = await rig(t, g);
  await expectFailure(t, () => r.a.connectDtls(1, 1, { psk: { mallory: KEY }, timeout: 1000 }), 'handshake', 2000, /wrong PSK/);
});

t.test('a server that shares no cipher suite: gnutls-serv drops the handshake silently, a timeout that says where', { skip }, async (t) => {
  // Only ECDHE-PSK on the server: nothing in common with node-dtls-client's plain PSK suites.
  const g = await gnutls(t, { priority: 'NORMAL:-KX-ALL:+ECDHE-PSK' });
  const r = await rig(t, g);
  await expectFailure(t, () => r.a.connectDtls(1, 1, { psk: PSK, timeout: 1000 }), 'timeout', 2000, /after a HelloVerifyRequest/);
});

t.test('a fatal alert from the server (openssl s_server, no shared cipher): reason alert, with its code', { skip }, async (t) => {
  const o = await startOpensslDtls({ cipher: 'ECDHE-PSK-AES128-CBC-SHA256' });
  cleanup(t, () => o.stop());
  const r = await rig(t, o);
  const e = await expectFailure(t, () => r.a.connectDtls(1, 1, { psk: PSK, timeout: 3000 }), 'alert', 3000, /fatal alert/);
  t.equal(e?.alertCode, 40, 'the alert code: 40');
  t.equal(e?.alertName, 'handshake_failure');
  t.equal(e?.alertFrom, 'peer');
});

t.test('timeout: the forwarded service does not answer', { skip }, async (t) => {
  const handles = await tracked(t);
  const p = await readyPair();
  const fw = await forwardComponent(p.b, 1, 1, await deadPort());
  await expectFailure(t, () => p.a.connectDtls(1, 1, { psk: PSK, timeout: 1200 }), 'timeout', 2200, /no answer from the DTLS server within 1200 ms \(ClientHello sent 2 times\)/);
  t.ok(fw.toService >= 2, `the ClientHello was retransmitted (${fw.toService} datagrams)`);
  await fw.close();
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('abort: during the handshake, and an already aborted signal', { skip }, async (t) => {
  const handles = await tracked(t);
  const p = await readyPair();
  const fw = await forwardComponent(p.b, 1, 1, await deadPort());
  const ac = new AbortController();
  // Aborted once the first ClientHello has reached the (dead) service: mid-handshake.
  void until(() => fw.toService >= 1, 5000, 'the ClientHello forwarded').finally(() => ac.abort()).catch(() => {});
  await expectFailure(t, () => p.a.connectDtls(1, 1, { psk: PSK, signal: ac.signal }), 'aborted', 1000, /aborted/);
  await expectFailure(t, () => p.a.connectDtls(1, 1, { psk: PSK, signal: AbortSignal.abort() }), 'aborted', 100);
  await fw.close();
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('agent close during the handshake: reason closed', { skip }, async (t) => {
  const g = await gnutls(t);
  const handles = await tracked(t);
  const p = await readyPair();
  const fw = await forwardComponent(p.b, 1, 1, g.port);
  const pending = p.a.connectDtls(1, 1, { psk: PSK });
  setTimeout(() => void p.a.close(), 5); // gnutls-serv takes ~50 ms per flight: mid-handshake
  await expectFailure(t, () => pending, 'closed', 1000, /closed/);
  await fw.close();
  await closeAll(p.a, p.b);
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('ICE failure while waiting for a pair: reason ice-failed', { skip }, async (t) => {
  const handles = await tracked(t);
  const a = new Agent({ ...LOOPBACK, controllingMode: true, stunMaxRetransmissions: 1, stunInitialTimeout: 50, stunMaxTimeout: 50 });
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  a.setRemoteCandidates(s, 1, [`candidate:1 1 udp 2130706431 127.0.0.1 ${await deadPort()} typ host`]);
  await expectFailure(t, () => a.connectDtls(s, 1, { psk: PSK, timeout: 4000 }), 'ice-failed', 4000, /failed/);
  await a.close();
  t.same(await handles.live(), [], 'no timer or socket left');
});

t.test('after the handshake: consent lost, then the agent closed, each an error event and a close', { skip }, async (t) => {
  const g = await gnutls(t);
  let cut = false;
  const network = filteredNetwork(() => !cut);
  const r = await rig(t, g, { network, consentInterval: 50, disconnectedTimeout: 150, consentTimeout: 300 });
  const d = await r.a.connectDtls(1, 1, { psk: PSK });
  t.equal(await echo(d, 5), 5);
  const events: string[] = [];
  const gotError = new Promise<DtlsError>((res) => d.on('error', (e) => {
    events.push(`error:${e.reason}`);
    res(e);
  }));
  const closed = new Promise<void>((res) => d.on('close', () => {
    events.push('close');
    res();
  }));
  cut = true; // everything A sends is dropped: no consent responses come back
  const e = await gotError;
  await closed;
  t.equal(e.reason, 'consent-lost');
  t.same(events, ['error:consent-lost', 'close'], "'error' then 'close'");
  t.same(d.error, e, 'socket.error keeps it');
  t.equal(d.send(record(0)), false, 'nothing more is sent');

  // A second session on a fresh pair: the agent closes under it.
  const g2 = await gnutls(t);
  const r2 = await rig(t, g2);
  const d2 = await r2.a.connectDtls(1, 1, { psk: PSK });
  const reasons: string[] = [];
  d2.on('error', (x) => reasons.push(x.reason));
  const closed2 = new Promise<void>((res) => d2.on('close', () => res()));
  await r2.a.close();
  await closed2;
  t.same(reasons, ['closed'], "the agent's close: an error naming it, then 'close'");
});

// ---------------------------------------------------------------- the CLI peers

function libniceProblem(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import gi; gi.require_version("Nice","0.1"); from gi.repository import Nice'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return `${PYTHON} cannot run: ${r.error.message}`;
  if (r.status !== 0) return tail(r.stderr, 5);
  return undefined;
}

const COUNT = 1000;
const MIN_ECHOED = 990;

if (!existsSync(PEER)) {
  t.fail(`${relative(ROOT, PEER)} is missing: build with \`npx tsc -p tsconfig.json\``);
} else {
  t.test('the CLI peers: the build is up to date', async (t) => {
    const stale = staleBuild();
    t.same(stale, [], stale.length ? `dist/ is older than ${stale.join(', ')}: rebuild with \`npx tsc -p tsconfig.json\`` : 'dist/ is current');
  });

  t.test('--help mentions --dtls-psk and --forward', async (t) => {
    const r = spawnSync(process.execPath, [PEER, '--help'], { encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 0);
    t.match(r.stdout, /--dtls-psk IDENTITY:HEXKEY/);
    t.match(r.stdout, /--forward HOST:PORT/);
  });

  for (const args of [['--role', 'controlled', '--dtls-psk', 'alice:00ff'], ['--role', 'controlling', '--dtls-psk', 'alice:0f0'],
    ['--role', 'controlling', '--dtls-psk', 'alice'], ['--role', 'controlling', '--forward', '127.0.0.1:5684'],
    ['--role', 'controlled', '--forward', '127.0.0.1']]) {
    t.test(`bad arguments: ${args.join(' ')}`, async (t) => {
      const r = spawnSync(process.execPath, [PEER, ...args], { encoding: 'utf8', timeout: 30_000, input: '' });
      t.equal(r.status, 2, 'exit code 2');
      const lines = r.stdout.trim().split('\n');
      t.equal(lines.length, 1);
      t.match(JSON.parse(lines[0]!), { type: 'error', message: /--(dtls-psk|forward)/ });
    });
  }

  const common = ['--host', '127.0.0.1', '--count', String(COUNT), '--size', String(SIZE), '--timeout', '10'];
  const controlling = (key: string) => ({ cmd: process.execPath, args: [PEER, '--role', 'controlling', '--dtls-psk', `alice:${key}`, ...common] });

  t.test('ice-agent --dtls-psk <-> ice-agent --forward to gnutls-serv: the data phase inside DTLS', { skip }, async (t) => {
    const g = await gnutls(t);
    const run = await runPair({
      a: controlling(DEFAULT_USERS.alice),
      b: { cmd: process.execPath, args: [PEER, '--role', 'controlled', '--forward', `127.0.0.1:${g.port}`, ...common] },
      timeoutMs: 30_000,
    });
    const diag = { a: tail(run.a.stderr), b: tail(run.b.stderr), closedBecause: run.closedBecause };
    t.notOk(run.timedOut, 'no timeout', diag);
    t.equal(run.a.code, 0, 'controlling exits 0', diag);
    t.equal(run.b.code, 0, 'controlled exits 0', diag);
    t.same(run.a.invalid, [], 'stdout holds protocol lines only');
    t.same(run.a.messages.filter((m) => m.type === 'error'), [], 'no error', diag);
    const done = firstOf(run.a, 'done');
    t.equal(done?.sent, COUNT);
    t.ok(Number(done?.echoed) >= MIN_ECHOED, `at least ${MIN_ECHOED} of ${COUNT} DTLS records echoed (got ${done?.echoed})`, diag);
    t.match(run.a.stderr, /DTLS: connected in \d+ ms, TLS_PSK_WITH_/, 'the handshake is logged on stderr');
    t.match(g.output(), /received\[/, 'gnutls-serv received the records');
    t.comment(`data phase ${done?.echoed}/${done?.sent} in ${done?.ms} ms; run ${run.ms.toFixed(0)} ms`);
  });

  const libnice = libniceProblem();
  const libniceSkip = skip || (libnice !== undefined && !inCI ? `libnice is missing: ${libnice}` : false);
  if (libnice !== undefined && inCI) t.fail(`libnice is missing in CI: ${libnice}`);
  t.test('ice-agent --dtls-psk <-> libnice --forward to gnutls-serv', { skip: libniceSkip }, async (t) => {
    const g = await gnutls(t);
    const run = await runPair({
      a: controlling(DEFAULT_USERS.alice),
      b: { cmd: PYTHON, args: [LIBNICE_PEER, '--role', 'controlled', '--forward', `127.0.0.1:${g.port}`, ...common] },
      timeoutMs: 30_000,
    });
    const diag = { a: tail(run.a.stderr), b: tail(run.b.stderr), closedBecause: run.closedBecause };
    t.notOk(run.timedOut, 'no timeout', diag);
    t.equal(run.a.code, 0, 'ice-agent exits 0', diag);
    t.equal(run.b.code, 0, 'libnice exits 0', diag);
    const done = firstOf(run.a, 'done');
    t.ok(Number(done?.echoed) >= MIN_ECHOED, `at least ${MIN_ECHOED} of ${COUNT} DTLS records echoed through libnice (got ${done?.echoed})`, diag);
    t.comment(`data phase ${done?.echoed}/${done?.sent} in ${done?.ms} ms; run ${run.ms.toFixed(0)} ms`);
  });

  t.test('--dtls-psk with a wrong key: an error line naming the handshake, exit 1, no hang', { skip }, async (t) => {
    const g = await gnutls(t);
    const run = await runPair({
      a: controlling('ffeeddccbbaa99887766554433221100'),
      b: { cmd: process.execPath, args: [PEER, '--role', 'controlled', '--forward', `127.0.0.1:${g.port}`, ...common] },
      timeoutMs: 30_000,
    });
    t.notOk(run.timedOut, 'no timeout');
    const err = firstOf(run.a, 'error');
    t.match(err?.message, /DTLS handshake failed \(handshake\).*wrong PSK or identity/, 'the error says what failed and why');
    t.equal(run.a.code, 1, 'exit 1');
    t.notOk(firstOf(run.a, 'done'), 'no done');
    // No hang is `no timeout` above (30 s for what the 5 s DTLS timeout ends); how long it took is a figure, not an assertion.
    t.comment(`over in ${run.ms.toFixed(0)} ms`);
  });
}

