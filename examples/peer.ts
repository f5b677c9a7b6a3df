#!/usr/bin/env node
/**
 * ice-agent-peer: a CLI ICE peer speaking the line protocol of
 * /work/shared/peer-protocol.md (JSON lines on stdin/stdout, logs on stderr).
 * Two peers (two of these, or this one and another implementation's) are
 * paired by a relay that copies each line one prints to the other's stdin.
 *
 *   ice-agent-peer --role controlling|controlled [--count N] [--size S]
 *     [--window W] [--host ADDR] [--stun HOST:PORT]
 *     [--turn HOST:PORT --turn-user U --turn-pass P] [--trickle]
 *     [--nomination regular|aggressive] [--tcp] [--no-udp] [--timeout SECONDS] [--verbose]
 *
 * Exit codes: 0 when stdin closes after the work is done (controlling: `done`
 * written; controlled: `connected` written), 1 on any failure (an `error` line
 * is written first), 2 on bad arguments.
 */
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import createDebug from 'debug';
import {
  Agent, type AgentOptions, type Candidate, type NominationMode, DEFAULT_OPTIONS, parseCandidate, serializeCandidate,
  type DtlsSocket, DtlsError,
} from '../lib/index.js';

const COMPONENT = 1;
/** A datagram without an echo after this long is lost and frees its window slot. */
const LOSS_TIMEOUT_MS = 500;
/** 0x80 marker + 4-byte big-endian sequence number. */
const HEADER = 5;
/** Largest UDP payload over IPv4. */
const MAX_SIZE = 65507;
/** --dtls-psk: the DTLS handshake must finish within this long after `connected`. */
const DTLS_TIMEOUT_MS = 5000;
/** --dtls-psk: largest plaintext of one DTLS record (--size must fit in one). */
const MAX_DTLS_SIZE = 16384;

// ------------------------------------------------------------------ output

type Message = Record<string, unknown> & { type: string };

/** stdout carries protocol messages only, one JSON object per line. */
function emit(msg: Message): void {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

let logPrefix = 'ice-agent-peer:';
let verbose = false;
function log(...parts: unknown[]): void {
  process.stderr.write(`${logPrefix} ${parts.map(String).join(' ')}\n`);
}
function vlog(...parts: unknown[]): void {
  if (verbose) log(...parts);
}

/** Resolves once everything written to stdout so far has been handed to the OS. */
function flushStdout(): Promise<void> {
  return new Promise((resolve) => process.stdout.write('', () => resolve()));
}

// --------------------------------------------------------------- arguments

interface HostPort {
  host: string;
  port: number;
}

interface Args {
  role: 'controlling' | 'controlled';
  count: number;
  size: number;
  window: number;
  host: string | undefined;
  stun: HostPort | undefined;
  turn: (HostPort & { user: string; pass: string }) | undefined;
  trickle: boolean;
  nomination: NominationMode;
  timeoutMs: number;
  verbose: boolean;
  /** ICE-lite (RFC 8445 §2.5): controlled only. */
  lite: boolean;
  /** Announced in place of --host's address in host candidates. */
  announce: string | undefined;
  /** Keep an export of the session in this file once connected. */
  sessionFile: string | undefined;
  /** Resume the session stored in `sessionFile` instead of gathering. */
  restore: boolean;
  /** Relayed candidates only (the agent's forceRelay). */
  relayOnly: boolean;
  /** Also gather ICE-TCP host candidates (the agent's iceTcp). */
  tcp: boolean;
  /** Gather no UDP candidates (the agent's iceUdp: false). */
  noUdp: boolean;
  /** Controlling: carry the data phase in a DTLS 1.2 PSK session over the selected pair. */
  dtlsPsk: { identity: string; key: Buffer } | undefined;
  /** Controlled: relay the component's datagrams to this local UDP service instead of echoing. */
  forward: HostPort | undefined;
}

const USAGE = `usage: ice-agent-peer --role controlling|controlled [options]

A CLI ICE peer speaking the line protocol of peer-protocol.md: JSON lines on
stdin/stdout, logs on stderr.

  --role controlling|controlled   ICE role (required)
  --count N                       datagrams the controlling peer sends (default 1000)
  --size S                        bytes per datagram (default 1000)
  --window W                      datagrams in flight at most (default 32)
  --host ADDR                     gather host candidates only on ADDR (default: all interfaces)
  --stun HOST:PORT                STUN server for server-reflexive candidates
  --turn HOST:PORT --turn-user U --turn-pass P
                                  TURN server for relayed candidates
  --trickle                       send candidates one by one as they are gathered
  --nomination regular|aggressive nomination mode of the controlling peer (default regular)
  --lite                          act as an ICE-lite agent (RFC 8445 §2.5); only with --role controlled
  --announce ADDR                 advertise ADDR in place of --host's address in host candidates
  --session-file F                after connected, keep an export of the session in F (rewritten when it changes)
  --restore                       with --session-file F: resume the session in F instead of gathering;
                                  writes {"type":"restored","ms":T} and then behaves as after connected
  --relay-only                    use relayed candidates only (needs --turn)
  --tcp                           also gather ICE-TCP host candidates (RFC 6544: active and passive;
                                  RFC 4571 framing)
  --no-udp                        gather no UDP candidates (with --tcp: TCP only)
  --dtls-psk IDENTITY:HEXKEY      controlling: after connected, run a DTLS 1.2 client (PSK) over the selected
                                  pair and carry the data phase inside it; done counts DTLS records echoed
  --forward HOST:PORT             controlled: instead of echoing, relay every datagram of the component to the
                                  local UDP service HOST:PORT and relay its answers back (e.g. a DTLS echo server)
  --timeout SECONDS               give up if not connected by then (default 30)
  --verbose                       log the agent's debug output on stderr
  --help                          print this and exit
`;

class UsageError extends Error {}
/** `--help`: usage on stdout, exit 0 (peer-protocol.md, optional features). */
class HelpRequested extends Error {}

function integer(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/** `host:port`, `[v6]:port`; the host is a name or an IP literal. */
function hostPort(name: string, v: string): HostPort {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(v);
  const host = m ? (m[1] ?? m[2])! : '';
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) {
    throw new UsageError(`--${name} must be HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(v)}`);
  }
  return { host, port };
}

function parseArguments(argv: string[]): Args {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        role: { type: 'string' },
        count: { type: 'string' },
        size: { type: 'string' },
        window: { type: 'string' },
        host: { type: 'string' },
        stun: { type: 'string' },
        turn: { type: 'string' },
        'turn-user': { type: 'string' },
        'turn-pass': { type: 'string' },
        trickle: { type: 'boolean' },
        nomination: { type: 'string' },
        timeout: { type: 'string' },
        verbose: { type: 'boolean' },
        lite: { type: 'boolean' },
        announce: { type: 'string' },
        'session-file': { type: 'string' },
        restore: { type: 'boolean' },
        'relay-only': { type: 'boolean' },
        tcp: { type: 'boolean' },
        'no-udp': { type: 'boolean' },
        'dtls-psk': { type: 'string' },
        forward: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) throw new HelpRequested();
  if (values.role !== 'controlling' && values.role !== 'controlled') {
    throw new UsageError(values.role === undefined
      ? '--role is required (controlling or controlled)'
      : `--role must be controlling or controlled, got ${JSON.stringify(values.role)}`);
  }
  const nomination = values.nomination ?? 'regular';
  if (nomination !== 'regular' && nomination !== 'aggressive') {
    throw new UsageError(`--nomination must be regular or aggressive, got ${JSON.stringify(nomination)}`);
  }
  if (values.host !== undefined && isIP(values.host) === 0) {
    throw new UsageError(`--host must be an IP address, got ${JSON.stringify(values.host)}`);
  }
  let timeoutMs = 30_000;
  if (values.timeout !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(values.timeout) || !(Number(values.timeout) > 0)) {
      throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
    }
    timeoutMs = Number(values.timeout) * 1000;
  }
  if (values.lite && values.role !== 'controlled') throw new UsageError('--lite is only for --role controlled');
  if (values.announce !== undefined) {
    if (isIP(values.announce) === 0) throw new UsageError(`--announce must be an IP address, got ${JSON.stringify(values.announce)}`);
    if (values.host === undefined) throw new UsageError('--announce needs --host (the local address it stands for)');
    if (isIP(values.announce) !== isIP(values.host)) throw new UsageError('--announce and --host must be of the same address family');
  }
  if (values.restore && values['session-file'] === undefined) throw new UsageError('--restore needs --session-file F');
  if (values['relay-only'] && values.turn === undefined) throw new UsageError('--relay-only needs --turn');
  if (values['no-udp'] && !values.tcp) throw new UsageError('--no-udp needs --tcp (without UDP and TCP there is nothing to gather)');
  let dtlsPsk: Args['dtlsPsk'];
  if (values['dtls-psk'] !== undefined) {
    // IDENTITY:HEXKEY; the key is hex, so the last colon separates them (an identity may hold colons).
    const v = values['dtls-psk'];
    const i = v.lastIndexOf(':');
    const identity = i > 0 ? v.slice(0, i) : '';
    const hex = i > 0 ? v.slice(i + 1) : '';
    if (identity === '' || !/^[\x20-\x7e]+$/.test(identity) || !/^(?:[0-9A-Fa-f]{2})+$/.test(hex)) {
      throw new UsageError(`--dtls-psk must be IDENTITY:HEXKEY (printable identity, an even number of hex digits), got ${JSON.stringify(v)}`);
    }
    if (values.role !== 'controlling') throw new UsageError('--dtls-psk is only for --role controlling');
    dtlsPsk = { identity, key: Buffer.from(hex, 'hex') };
  }
  if (values.forward !== undefined && values.role !== 'controlled') throw new UsageError('--forward is only for --role controlled');
  const forward = values.forward === undefined ? undefined : hostPort('forward', values.forward);
  let turn: Args['turn'];
  if (values.turn !== undefined) {
    const user = values['turn-user'];
    const pass = values['turn-pass'];
    if (user === undefined || pass === undefined) throw new UsageError('--turn needs --turn-user and --turn-pass');
    turn = { ...hostPort('turn', values.turn), user, pass };
  } else if (values['turn-user'] !== undefined || values['turn-pass'] !== undefined) {
    throw new UsageError('--turn-user and --turn-pass need --turn');
  }
  return {
    role: values.role,
    count: integer('count', values.count, 1000, 0, 0xffffffff),
    size: integer('size', values.size, 1000, HEADER, values['dtls-psk'] !== undefined ? MAX_DTLS_SIZE : MAX_SIZE),
    window: integer('window', values.window, 32, 1, 1_000_000),
    host: values.host,
    stun: values.stun === undefined ? undefined : hostPort('stun', values.stun),
    turn,
    trickle: values.trickle ?? false,
    nomination,
    timeoutMs,
    verbose: values.verbose ?? false,
    lite: values.lite ?? false,
    announce: values.announce,
    sessionFile: values['session-file'],
    restore: values.restore ?? false,
    relayOnly: values['relay-only'] ?? false,
    tcp: values.tcp ?? false,
    noUdp: values['no-udp'] ?? false,
    dtlsPsk,
    forward,
  };
}

// ------------------------------------------------------- STUN / TURN servers
//
// --stun and --turn become the agent's stunServers/turnServers (RFC 7064/7065
// URLs); IPv6 literals go in brackets.

function serverOptions(args: Args): Partial<AgentOptions> {
  const hp = (h: { host: string; port: number }) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);
  return {
    ...(args.stun ? { stunServers: [`stun:${hp(args.stun)}`] } : {}),
    ...(args.turn
      ? { turnServers: [{ url: `turn:${hp(args.turn)}?transport=udp`, username: args.turn.user, credential: args.turn.pass }] }
      : {}),
  };
}

// ------------------------------------------------------------- --forward

interface Forwarder {
  send(data: Buffer): void;
  close(): void;
}

/**
 * `--forward HOST:PORT`: every datagram of the component goes to the UDP
 * service, and whatever the service answers goes back over the component.
 * The socket is connected to the service, so the kernel delivers only its
 * answers, and bound to loopback when the service is on loopback, so
 * nothing outside the host can reach it. Datagrams that arrive before the
 * socket is connected (it is opened at start-up, long before ICE connects) are
 * dropped; errors (ICMP port unreachable while the service is down) are logged.
 */
function openForwarder(target: HostPort, answer: (data: Buffer) => void): Forwarder {
  const v6 = isIP(target.host) === 6;
  const loopback = target.host === 'localhost' || target.host === '::1' || /^127\./.test(target.host);
  const sock = dgram.createSocket(v6 ? 'udp6' : 'udp4');
  let ready = false;
  let closed = false;
  const seen = new Set<string>();
  sock.on('error', (err: NodeJS.ErrnoException) => {
    // Once per kind of error: a service that is down answers every datagram with an ICMP error.
    if (!seen.has(err.code ?? err.message)) log(`--forward ${target.host}:${target.port}: ${err.message}`);
    seen.add(err.code ?? err.message);
  });
  sock.on('message', (data) => answer(data));
  sock.on('connect', () => {
    ready = true;
    vlog(`forwarding the component to ${target.host}:${target.port}`);
  });
  sock.bind(0, loopback ? (v6 ? '::1' : '127.0.0.1') : undefined, () => {
    if (!closed) sock.connect(target.port, target.host);
  });
  return {
    send(data) {
      if (ready && !closed) sock.send(data);
    },
    close() {
      if (closed) return;
      closed = true;
      sock.close();
    },
  };
}

// -------------------------------------------------------------------- peer

function describe(c: Candidate): string {
  return serializeCandidate(c);
}

async function main(): Promise<void> {
  // The reader of our stdout went away: nobody can hear us any more.
  process.stdout.on('error', () => process.exit(1));
  let args: Args;
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(USAGE);
      await flushStdout();
      process.exit(0);
    }
    if (!(err instanceof UsageError)) throw err;
    emit({ type: 'error', message: err.message });
    process.stderr.write(`ice-agent-peer: ${err.message}\n${USAGE}`);
    await flushStdout();
    process.exit(2);
  }
  logPrefix = `ice-agent-peer[${args.role}]:`;
  verbose = args.verbose;
  if (verbose) createDebug.enable([process.env.DEBUG, 'ice-agent:*'].filter(Boolean).join(','));

  // Trickle ICE (RFC 8838): with --trickle a component must not fail before the
  // peer's end-of-candidates. Only libraries that know the option get it.
  const libTrickle = 'iceTrickle' in DEFAULT_OPTIONS;
  const options: AgentOptions = {
    controllingMode: args.role === 'controlling',
    nominationMode: args.nomination,
    localAddresses: args.host === undefined ? undefined : [args.host],
    ...(args.lite ? { iceLite: true } : {}),
    ...(args.announce !== undefined ? { announcedAddresses: { [args.host!]: args.announce } } : {}),
    ...((args.trickle && libTrickle ? { iceTrickle: true } : {}) as Partial<AgentOptions>),
    ...(args.relayOnly ? { forceRelay: true } : {}),
    ...(args.tcp ? { iceTcp: true } : {}),
    ...(args.noUdp ? { iceUdp: false } : {}),
    ...serverOptions(args),
  };
  let agent: Agent;
  let stream: number;
  if (args.restore) {
    // Session continuity: the same ports, credentials and selected pair; no gathering, no description.
    try {
      const { controllingMode: _role, ...rest } = options;
      void _role;
      agent = await Agent.restore(JSON.parse(readFileSync(args.sessionFile!, 'utf8')) as unknown, rest);
    } catch (err) {
      emit({ type: 'error', message: `cannot restore the session in ${args.sessionFile}: ${(err as Error).message}` });
      await flushStdout();
      process.exit(1);
    }
    stream = agent.getStreamIds()[0]!;
  } else {
    agent = new Agent(options);
    stream = agent.addStream(1);
  }
  /** Keeps the export of the session in the file (written to a temporary name, then renamed: never half a file). */
  const storeSession = (): void => {
    if (args.sessionFile === undefined || exiting) return;
    try {
      writeFileSync(`${args.sessionFile}.tmp`, JSON.stringify(agent.exportSession()));
      renameSync(`${args.sessionFile}.tmp`, args.sessionFile);
    } catch (err) {
      log(`cannot write the session to ${args.sessionFile}: ${(err as Error).message}`);
    }
  };
  agent.on('session-changed', () => {
    if (connected) storeSession();
  });
  /** --restore: data flowing again is the first datagram from the peer. */
  let restoredPending = args.restore;
  /** Controlled side: datagrams echoed so far. */
  let relayed = 0;

  let remoteCredsAt: number | undefined;
  let remoteEndOfCandidates = false;
  let gatheringDone = false;
  let connected = false;
  /** Controlled: nothing to do after connecting. Controlling: set when `done` is written. */
  let workDone = false;
  let exiting = false;

  const finish = async (code: number, error?: string): Promise<void> => {
    if (exiting) return;
    exiting = true;
    if (error !== undefined) {
      log('fatal:', error);
      emit({ type: 'error', message: error });
    }
    clearTimeout(connectTimer);
    stopData();
    rl.close();
    if (verbose) log('agent stats', JSON.stringify(agent.getStats()));
    // close_notify goes out before the agent closes under the DTLS session.
    if (dtls) await dtls.close();
    forwarder?.close();
    await agent.close();
    await flushStdout();
    process.exit(code);
  };

  // ---- gathering
  agent.on('new-candidate', (c) => {
    vlog('local candidate', describe(c));
    if (args.trickle && c.streamId === stream && c.component === COMPONENT) emit({ type: 'candidate', candidate: describe(c) });
  });
  agent.on('candidate-gathering-done', (id) => {
    if (id !== stream) return;
    gatheringDone = true;
    const cands = agent.getLocalCandidates(stream, COMPONENT);
    if (cands.length === 0) {
      void finish(1, `no local candidate could be gathered${args.host ? ` on ${args.host}` : ''}`);
      return;
    }
    if (args.trickle) {
      emit({ type: 'end-of-candidates' });
      return;
    }
    const { ufrag, pwd } = agent.getLocalCredentials(stream);
    emit({ type: 'description', ufrag, pwd, candidates: cands.map(describe) });
  });

  // ---- connectivity
  agent.on('component-state-changed', (id, component, state) => {
    if (id !== stream || component !== COMPONENT) return;
    vlog('component state', state);
    if (state !== 'failed' || connected) return;
    // Without trickle all remote candidates are in, so failed is final; with
    // trickle too when the library waits for end-of-candidates itself. Otherwise
    // more candidates may come (and revive the component) until both sides are done.
    if (!args.trickle || libTrickle || (remoteEndOfCandidates && gatheringDone)) void finish(1, 'ICE failed');
    else log('component failed for now; waiting for more remote candidates');
  });
  agent.on('new-selected-pair', (id, component, local, remote) => {
    if (id !== stream || component !== COMPONENT) return;
    log('selected pair', describe(local), '<->', describe(remote));
    if (connected) return;
    connected = true;
    clearTimeout(connectTimer);
    const ms = remoteCredsAt === undefined ? 0 : Math.round(performance.now() - remoteCredsAt);
    // The session is stored before `connected` goes out: whoever reads that line may rely on the file.
    storeSession();
    emit({ type: 'connected', ms, local: describe(local), remote: describe(remote) });
    if (args.role === 'controlled') workDone = true;
    else startData();
  });

  // ---- data phase: controlling sends, controlled echoes
  /** seq -> send time, in send order (a Map keeps insertion order), so the oldest is first. */
  const inFlight = new Map<number, number>();
  let nextSeq = 0;
  let echoed = 0;
  let lost = 0;
  let firstSend: number | undefined;
  let lastEcho: number | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let dataStarted = false;

  /** --dtls-psk: the DTLS session the data phase runs in. */
  let dtls: DtlsSocket | undefined;
  function startData(): void {
    if (args.dtlsPsk && !dtls) {
      startDtls(args.dtlsPsk);
      return;
    }
    dataStarted = true;
    pump();
  }
  function startDtls(psk: { identity: string; key: Buffer }): void {
    log('DTLS: handshake over the selected pair, identity', JSON.stringify(psk.identity));
    agent.connectDtls(stream, COMPONENT, { psk: { [psk.identity]: psk.key }, timeout: DTLS_TIMEOUT_MS }).then((d) => {
      if (exiting) {
        void d.close();
        return;
      }
      dtls = d;
      log(`DTLS: connected in ${Math.round(d.handshakeMs ?? 0)} ms, ${d.cipherSuite}`);
      d.on('message', (data) => onEcho(data));
      d.on('error', (err) => void finish(1, `DTLS session ended (${err.reason}): ${err.message}`));
      d.on('close', () => {
        if (!exiting && !workDone) void finish(1, 'DTLS: the server closed the session');
      });
      startData();
    }, (err: unknown) => {
      const why = err instanceof DtlsError ? `DTLS handshake failed (${err.reason}): ${err.message}` : `DTLS: ${(err as Error).message}`;
      void finish(1, why);
    });
  }
  /** One datagram of the data phase: a DTLS record with --dtls-psk, else a datagram on the component. */
  function sendData(buf: Buffer): boolean {
    return dtls ? dtls.send(buf) : agent.send(stream, COMPONENT, buf);
  }
  /** An echo of the data phase (controlling side). */
  function onEcho(data: Buffer): void {
    if (!dataStarted || data.length < HEADER || data[0] !== 0x80) return;
    const seq = data.readUInt32BE(1);
    if (!inFlight.delete(seq)) return; // a duplicate, or already counted as lost
    echoed++;
    lastEcho = performance.now();
    pump();
  }
  function stopData(): void {
    clearTimeout(sweepTimer);
    sweepTimer = undefined;
  }
  function pump(): void {
    if (exiting || workDone) return;
    // Slow start: one datagram in flight until the first echo. The controlled
    // peer may not have a pair to send on yet when we select ours (its own
    // triggered check completes ~1 RTT + Ta later, RFC 8445 §7.3.1.5; libnice
    // cannot send before that), so a full window sent at once could be
    // received but not echoed. Fewer than W in flight is within the protocol.
    const window = echoed === 0 ? 1 : args.window;
    while (nextSeq < args.count && inFlight.size < window) {
      const buf = Buffer.alloc(args.size);
      buf[0] = 0x80; // RFC 7983: RTP-like, never STUN
      buf.writeUInt32BE(nextSeq, 1);
      const now = performance.now();
      firstSend ??= now;
      // A send with no pair to go on is simply a datagram that will not be echoed.
      if (!sendData(buf)) vlog('send failed for', nextSeq);
      inFlight.set(nextSeq, now);
      nextSeq++;
    }
    armSweep();
    if (echoed + lost === args.count) {
      workDone = true;
      stopData();
      const ms = firstSend !== undefined && lastEcho !== undefined ? Math.round(lastEcho - firstSend) : 0;
      log(`data phase over: ${echoed}/${args.count} echoed, ${lost} lost`);
      emit({ type: 'done', sent: nextSeq, echoed, ms });
    }
  }
  /** One timer for the whole window, due when the oldest datagram in flight expires. */
  function armSweep(): void {
    if (sweepTimer !== undefined || inFlight.size === 0) return;
    const oldest = inFlight.values().next().value as number;
    sweepTimer = setTimeout(sweep, Math.max(0, oldest + LOSS_TIMEOUT_MS - performance.now()));
  }
  function sweep(): void {
    sweepTimer = undefined;
    const now = performance.now();
    for (const [seq, sentAt] of inFlight) {
      if (now - sentAt < LOSS_TIMEOUT_MS) break;
      inFlight.delete(seq);
      lost++;
    }
    pump();
  }

  agent.attachRecv(stream, COMPONENT, (data) => {
    if (restoredPending) {
      // performance.now() counts from the start of the process.
      restoredPending = false;
      connected = true;
      clearTimeout(connectTimer);
      emit({ type: 'restored', ms: Math.round(performance.now()) });
      storeSession();
      if (args.role === 'controlled') workDone = true;
      else startData();
    }
    if (args.role === 'controlled') {
      if (forwarder) forwarder.send(data);
      else agent.send(stream, COMPONENT, data);
      // Progress on stderr, for whoever watches the data phase (e.g. a test that kills us half-way).
      if (++relayed % 100 === 0) log(`${forwarder ? 'forwarded' : 'echoed'} ${relayed}`);
      return;
    }
    // With --dtls-psk the echoes are DTLS records, which come through the DTLS session instead.
    if (!dtls) onEcho(data);
  });

  // ---- --forward: the component's datagrams to a local UDP service and its answers back
  const forwarder = args.forward ? openForwarder(args.forward, (data) => agent.send(stream, COMPONENT, data)) : undefined;

  // ---- signalling input
  const setCredentials = (ufrag: unknown, pwd: unknown): void => {
    if (typeof ufrag !== 'string' || typeof pwd !== 'string') throw new Error('ufrag and pwd must be strings');
    remoteCredsAt ??= performance.now();
    const current = agent.getRemoteCredentials(stream);
    // The same values again are no news; different ones would be an ICE restart by the peer.
    if (current?.ufrag !== ufrag || current.pwd !== pwd) agent.setRemoteCredentials(stream, ufrag, pwd);
  };
  const addCandidate = (text: unknown): void => {
    if (typeof text !== 'string') throw new Error('a candidate must be a string');
    let c: Candidate;
    try {
      c = parseCandidate(text);
    } catch (err) {
      log(`ignoring unparsable remote candidate ${JSON.stringify(text)}: ${(err as Error).message}`);
      return;
    }
    if (c.component !== COMPONENT) {
      log('ignoring remote candidate for another component:', text);
      return;
    }
    try {
      const added = agent.addRemoteCandidate(stream, c);
      vlog(added ? 'remote candidate' : 'remote candidate not used', text);
    } catch (err) {
      log(`remote candidate ${JSON.stringify(text)} refused: ${(err as Error).message}`);
    }
  };
  const remoteGatheringDone = (): void => {
    if (remoteEndOfCandidates) return;
    remoteEndOfCandidates = true;
    // Trickle end-of-candidates (RFC 8838 §8), for libraries that have it.
    const fn = (agent as unknown as { peerCandidateGatheringDone?: (streamId: number) => void }).peerCandidateGatheringDone;
    if (typeof fn === 'function') fn.call(agent, stream);
  };
  const handleLine = (line: string): void => {
    if (line.trim() === '') return;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      log('ignoring malformed line (not JSON):', line.slice(0, 200));
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof (msg as Message).type !== 'string') {
      log('ignoring malformed line (not a message object):', line.slice(0, 200));
      return;
    }
    const m = msg as Message;
    try {
      switch (m.type) {
        case 'description':
          if (!Array.isArray(m.candidates)) throw new Error('candidates must be an array');
          setCredentials(m.ufrag, m.pwd);
          for (const c of m.candidates) addCandidate(c);
          // A description holds every candidate the peer has: it is its end-of-candidates too.
          remoteGatheringDone();
          break;
        case 'credentials':
          setCredentials(m.ufrag, m.pwd);
          break;
        case 'candidate':
          addCandidate(m.candidate);
          break;
        case 'end-of-candidates':
          remoteGatheringDone();
          break;
        default:
          vlog('ignoring message of type', m.type);
      }
    } catch (err) {
      log(`ignoring malformed ${m.type} message: ${(err as Error).message}`);
    }
  };

  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', handleLine);
  rl.on('close', () => {
    if (exiting) return;
    if (workDone) {
      log('stdin closed; bye');
      void finish(0);
    } else {
      void finish(1, `stdin closed before ${connected ? 'the data phase finished' : 'connecting'}`);
    }
  });

  const connectTimer = setTimeout(() => {
    if (!connected) void finish(1, `not connected after ${args.timeoutMs / 1000} s`);
  }, args.timeoutMs);

  if (args.restore) {
    // The controlling side speaks first after a restore: its data phase starts again, and that is data flowing.
    if (args.role === 'controlling') {
      restoredPending = false;
      connected = true;
      clearTimeout(connectTimer);
      emit({ type: 'restored', ms: Math.round(performance.now()) });
      startData();
    }
    return;
  }
  if (args.trickle) {
    const { ufrag, pwd } = agent.getLocalCredentials(stream);
    emit({ type: 'credentials', ufrag, pwd });
  }
  try {
    await agent.gatherCandidates(stream);
  } catch (err) {
    await finish(1, `gathering failed: ${(err as Error).message}`);
  }
}

main().catch((err: unknown) => {
  // Last resort: something threw outside the handlers above.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ice-agent-peer: fatal: ${err instanceof Error ? err.stack : message}\n`);
  emit({ type: 'error', message });
  process.exitCode = 1;
  setImmediate(() => process.exit(1));
});
