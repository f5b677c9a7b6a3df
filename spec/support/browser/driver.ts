/**
 * Runs inside the browser test's network namespace (spec/support/browser/
 * namespace.ts), started by harness.ts as `ip netns exec NS node driver.js
 * CONFIG`: everything that talks to the browser is here, in one process on
 * the namespace's addresses only —
 *
 *  - an HTTP server on 127.0.0.1 serving page.html, receiving what the page
 *    reports (POST /event) and passing its signalling requests on to the
 *    signalling server (/sig/*: the example server sends no CORS headers, so
 *    the page reaches it through its own origin; its WebSocket directly);
 *  - the signalling server of examples/signalling-server.ts, on 127.0.0.1;
 *  - an ice-agent Agent on the namespace's address, signalling through that
 *    server with examples/signalling-client.ts's SignallingClient and the
 *    SDP helpers (lib/sdp);
 *  - headless Chromium on the page.
 *
 * It prints JSON lines on stdout: `{"type":"listening",...}`, one
 * `{"type":"result","ok":...}` with what both sides saw, and
 * `{"type":"closed","handles":[...]}` once everything it opened is closed
 * (then it exits by itself; a handle left open would keep it up, and the
 * harness reports that).
 *
 * The SDP the agent writes carries what Chromium needs to accept a data
 * channel section (`UDP/DTLS/SCTP webrtc-datachannel`, a=fingerprint,
 * a=setup, a=sctp-port): the fingerprint is random, since ice-agent does no
 * DTLS-SRTP, so Chromium's DTLS handshake after ICE never completes (its
 * connectionState ends `failed` or stays `connecting`). That is expected:
 * this checks ICE only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { Agent, serializeCandidate, type Candidate, type ComponentState, type Logger } from '../../../lib/index.js';
import { applyDescription, describeAgent, generateSdp, parseSdp, type IceDescription } from '../../../lib/sdp/index.js';
import { SignallingServer, type IceCandidateInit, type SignalMessage } from '../../../examples/signalling-server.js';
import { SignallingClient } from '../../../examples/signalling-client.js';
import { MulticastDnsResolver, type MdnsResolver } from '../../../lib/gather/mdns.js';

export interface DriverConfig {
  /** What the page does: `offer` (the browser offers, the agent answers), `answer` (the agent offers), `pair` (two browser peers, no agent). */
  mode: 'offer' | 'answer' | 'pair';
  trickle: boolean;
  /** The agent is ICE-lite (it must then answer: `mode: 'offer'`). */
  lite: boolean;
  /** Run Chromium as it comes (host candidates as mDNS `.local` names), without --disable-features=WebRtcHideLocalIpsWithMdns. */
  mdns: boolean;
  /** The namespace's address, where the agent gathers. */
  address: string;
  chromium: string;
  /** Path of page.html. */
  page: string;
  /** Everything (browser start to both sides connected), ms. */
  timeoutMs: number;
  /**
   * First connect two agents of this process to each other on 127.0.0.1
   * through the SDP helpers, so that the figures are not those of code run
   * for the first time (module loading, the JIT): a fresh process per case
   * would otherwise time its first STUN transaction and first bind.
   */
  warmUp: boolean;
}

/** One side's selected pair, as `ip:port` plus type. */
export interface Endpoint {
  address?: string;
  port?: number;
  type?: string;
}

export interface PageEvent {
  kind: string;
  t: number;
  [k: string]: unknown;
}

export interface BrowserSide {
  ua?: string;
  /** setRemoteDescription called → iceConnectionState connected (or completed), ms of the page's clock. */
  srdToConnectedMs: number;
  state: string;
  selected?: { pair?: Record<string, unknown>; local?: Record<string, unknown>; remote?: Record<string, unknown> };
  dump: unknown;
  states: unknown[];
  /** mode `pair`: the answering peer connection. */
  peer?: Omit<BrowserSide, 'peer' | 'ua'>;
}

export interface AgentSide {
  role: 'controlling' | 'controlled';
  lite: boolean;
  /** Remote description applied → component 1 ready, ms. */
  toReadyMs: number;
  /** Remote description applied → component 1 connected (a valid pair), ms. */
  toConnectedMs?: number;
  local: Endpoint;
  remote: Endpoint;
  remoteCandidates: string[];
  skipped: string[];
  /** mDNS names the agent resolved: how long each took, ms (mode `mdns`). */
  resolved: { name: string; ms: number; address?: string; error?: string }[];
  states: { state: string; t: number }[];
  /** The agent's answer or offer, as sent. */
  sdp: string;
}

export type DriverLine =
  | { type: 'listening'; page: string; signalling: string }
  | { type: 'result'; ok: true; config: DriverConfig; browser: BrowserSide; agent?: AgentSide; warnings: string[] }
  | { type: 'result'; ok: false; config: DriverConfig; error: string; events: PageEvent[]; agent?: unknown; log: string[]; chromium: string }
  | { type: 'closed'; handles: string[] };

const MID = '0';
const out = (line: DriverLine) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** A DTLS fingerprint in valid syntax (RFC 8122 §5): never checked, since no DTLS handshake completes. */
function fingerprint(): string {
  return `sha-256 ${[...randomBytes(32)].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':')}`;
}

/** The SDP of the agent's stream, with what Chromium requires of a data channel m= section (RFC 8841, RFC 8842). */
function agentSdp(agent: Agent, streamId: number, setup: 'actpass' | 'active', endOfCandidates: boolean, fp: string): string {
  const desc: IceDescription = describeAgent(agent, [{
    streamId, mid: MID, media: 'application', protocol: 'UDP/DTLS/SCTP', formats: ['webrtc-datachannel'], endOfCandidates,
    attributes: [`fingerprint:${fp}`, `setup:${setup}`, 'sctp-port:5000', 'max-message-size:262144'],
  }]);
  desc.attributes = [`group:BUNDLE ${MID}`];
  return generateSdp(desc);
}

const endpoint = (c: Candidate | undefined): Endpoint => (c ? { address: c.address, port: c.port, type: c.type } : {});

/** See DriverConfig.warmUp. */
async function warmUp(): Promise<void> {
  const quiet: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
  const opts = { localAddresses: ['127.0.0.1'], logger: quiet, logLevel: 'silent' as const, mdns: false };
  const a = new Agent({ ...opts, controllingMode: true, name: 'warm-up-a' });
  const b = new Agent({ ...opts, name: 'warm-up-b' });
  try {
    const sa = a.addStream(1);
    const sb = b.addStream(1);
    await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
    applyDescription(a, sa, parseSdp(generateSdp(describeAgent(b, [{ streamId: sb, mid: MID }]))), MID);
    applyDescription(b, sb, parseSdp(generateSdp(describeAgent(a, [{ streamId: sa, mid: MID }]))), MID);
    await Promise.all([a.connect(sa, { timeout: 5000 }), b.connect(sb, { timeout: 5000 })]);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

/** What a process has open from the start (its stdio): not counted as left behind. */
const BASELINE = process.getActiveResourcesInfo();

/** The resources open now that were not at the start. */
function leftOpen(): string[] {
  const base = [...BASELINE];
  return process.getActiveResourcesInfo().filter((h) => {
    const i = base.indexOf(h);
    if (i < 0) return true;
    base.splice(i, 1);
    return false;
  });
}

async function main(config: DriverConfig): Promise<void> {
  if (config.warmUp) await warmUp();
  const page = readFileSync(config.page);
  const events: PageEvent[] = [];
  const warnings: string[] = [];
  const log: string[] = [];
  const waiters = new Set<(e: PageEvent) => void>();
  const closers: (() => Promise<void> | void)[] = [];
  let chromiumErr = '';
  let timer: NodeJS.Timeout | undefined;
  let agent: Agent | undefined;
  let streamId: number | undefined;

  const sig = await SignallingServer.start();
  closers.push(() => sig.close());
  const client = new SignallingClient(sig.url);

  // ------------------------------------------------------------ the page's server
  const proxy = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const up = request(new URL(path, sig.url), { method: req.method, agent: false, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' } }, (r) => {
      res.writeHead(r.statusCode ?? 502, { 'content-type': r.headers['content-type'] ?? 'application/json' });
      r.pipe(res);
    });
    up.on('error', (err) => { res.writeHead(502); res.end(String(err)); });
    req.pipe(up);
  };
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
      return res.end(page);
    }
    if (url.pathname.startsWith('/sig/')) return proxy(req, res, url.pathname.slice(4) + url.search);
    if (req.method === 'POST' && url.pathname === '/event') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(204).end();
        let e: PageEvent;
        try {
          e = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PageEvent;
        } catch {
          return;
        }
        events.push(e);
        if (e.kind === 'warn') warnings.push(String(e.message));
        for (const w of [...waiters]) w(e);
      });
      return;
    }
    res.writeHead(404).end();
  });
  http.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => {
    http.close(() => resolve());
    http.closeAllConnections();
  }));
  const port = (http.address() as { port: number }).port;
  const base = `http://127.0.0.1:${port}/`;
  out({ type: 'listening', page: base, signalling: sig.url });

  /** The next page event of `kind` (or a failure the page reports). */
  const pageEvent = (kind: string) => {
    const p = new Promise<PageEvent>((resolve, reject) => {
      const seen = events.find((e) => e.kind === kind);
      if (seen) return resolve(seen);
      const on = (e: PageEvent) => {
        if (e.kind === kind) resolve(e);
        else if (e.kind === 'failed' || e.kind === 'error') reject(new Error(`the page: ${String(e.message)}`));
        else return;
        waiters.delete(on);
      };
      waiters.add(on);
    });
    p.catch(() => undefined); // seen where it is awaited
    return p;
  };

  // ------------------------------------------------------------ Chromium
  let chromium: ChildProcess | undefined;
  let closing = false;
  const profile = mkdtempSync(join(tmpdir(), 'ice-agent-chromium-'));
  closers.push(() => rmSync(profile, { recursive: true, force: true }));
  const launch = (query: Record<string, string>) => {
    const url = `${base}?${new URLSearchParams({ ...query, trickle: config.trickle ? '1' : '0', sig: String(sig.port) })}`;
    const args = [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--mute-audio', `--user-data-dir=${profile}`,
      '--allow-loopback-in-peer-connection',
      // Chromium looks up Google's update and account hosts even with background networking off: no name resolves here
      // (the namespace's resolv.conf names the host's DNS server, which it cannot reach).
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      ...(config.mdns ? [] : ['--disable-features=WebRtcHideLocalIpsWithMdns']),
      url,
    ];
    // Its own process group: the browser's helpers (zygote, renderer, network service) go with it.
    chromium = spawn(config.chromium, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    chromium.stderr!.on('data', (d: Buffer) => {
      chromiumErr = (chromiumErr + d.toString().split('\n').filter((l) => !/dbus|\[: \d+: unexpected operator/.test(l)).join('\n')).slice(-8000);
    });
    chromium.once('exit', (code, signal) => {
      if (closing) return;
      for (const w of [...waiters]) w({ kind: 'error', t: 0, message: `chromium exited (${code ?? signal})` });
    });
  };
  const killChromium = () => new Promise<void>((resolve) => {
    const c = chromium;
    if (!c || (c.exitCode !== null || c.signalCode !== null) && c.stderr!.destroyed) return resolve();
    // 'close': exited, and its stderr pipe closed too.
    c.once('close', () => resolve());
    try { process.kill(-c.pid!, 'SIGKILL'); } catch { c.kill('SIGKILL'); }
  });

  // ------------------------------------------------------------ the agent
  const states: { state: string; t: number }[] = [];
  const skipped: string[] = [];
  let applied = 0;
  let sdp = '';
  const fp = fingerprint();
  const logger: Logger = {
    error: (m) => log.push(`error ${m}`), warn: (m) => log.push(`warn ${m}`), info: (m) => log.push(`info ${m}`),
    debug: (m) => log.push(`debug ${m}`), trace: (m) => log.push(`trace ${m}`),
  };
  // The agent's own multicast-dns resolver, watched: the report waits for the names to be resolved (or not).
  const resolved: AgentSide['resolved'] = [];
  const resolutions: Promise<unknown>[] = [];
  const mdns = new MulticastDnsResolver();
  closers.push(() => mdns.close());
  const watched: MdnsResolver = {
    resolve: (name, timeoutMs) => {
      const start = performance.now();
      const p = mdns.resolve(name, timeoutMs);
      resolutions.push(p.then((address) => resolved.push({ name, ms: performance.now() - start, address }),
        (err: Error) => resolved.push({ name, ms: performance.now() - start, error: err.message })));
      return p;
    },
    close: () => Promise.resolve(),
  };
  const makeAgent = (controlling: boolean) => {
    const a = new Agent({
      controllingMode: controlling, iceTrickle: config.trickle, iceLite: config.lite, localAddresses: [config.address], name: 'ice-agent', mdns: watched,
      ...(process.env.DEBUG?.includes('ice-agent') ? {} : { logger, logLevel: 'trace' as const }),
    });
    a.on('component-state-changed', (_s, c, state: ComponentState) => { if (c === 1) states.push({ state, t: performance.now() }); });
    a.on('remote-candidate-skipped', (_s, c, reason) => skipped.push(`${serializeCandidate(c)}: ${reason}`));
    closers.push(() => a.close());
    agent = a;
    return a;
  };
  /** Component 1 ready (or failed). */
  const ready = (a: Agent, id: number) => {
    const p = new Promise<void>((resolve, reject) => {
      const on = (s: number, c: number, state: ComponentState) => {
        if (s !== id || c !== 1) return;
        if (state === 'ready') resolve();
        else if (state === 'failed') reject(new Error('the agent\'s component 1 failed'));
        else return;
        a.off('component-state-changed', on);
      };
      a.on('component-state-changed', on);
    });
    p.catch(() => undefined); // seen where it is awaited
    return p;
  };
  /**
   * Gathers now and posts the agent's candidates as they come, once `after`
   * resolves with the session (the answer is out first, so that the peer
   * has the credentials before the candidates), in order, then
   * end-of-candidates; resolves when all are posted.
   */
  const trickle = (a: Agent, id: number, after: Promise<string>, from: 'offerer' | 'answerer') => {
    let chain: Promise<unknown> = after;
    const post = (candidate: string) => {
      chain = chain.then(() => after).then((session) => client.candidate(session, from, { candidate, sdpMid: MID, sdpMLineIndex: 0 }));
    };
    const on = (c: Candidate) => { if (c.streamId === id) post(serializeCandidate(c)); };
    a.on('new-candidate', on);
    return a.gatherCandidates(id).then(() => {
      a.off('new-candidate', on);
      post('');
      return chain;
    });
  };
  const remoteIce = (a: Agent, id: number, ice: IceCandidateInit) => {
    if ((ice.sdpMid ?? MID) !== MID) return;
    if (ice.candidate === '') a.peerCandidateGatheringDone(id);
    else a.addRemoteCandidate(id, ice.candidate);
  };
  let ws: WebSocket | undefined;
  closers.push(() => { ws?.terminate(); });
  // What goes wrong in the background (a POST, a bad message) or the deadline: the run stops there.
  let fail!: (err: unknown) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  const background = (p: Promise<unknown>) => void p.catch(fail);

  let agentReady: Promise<void> | undefined;
  try {
    timer = setTimeout(() => fail(new Error(`no connection within ${config.timeoutMs} ms`)), config.timeoutMs);
    const flow = (async () => {
      if (config.mode === 'pair') {
        launch({ mode: 'pair' });
        return;
      }
      if (config.mode === 'offer') {
        // The browser offers (it is controlling, RFC 8445 §6.1.1); the agent answers.
        const a = makeAgent(false);
        launch({ mode: 'offer' });
        const { session } = (await Promise.race([pageEvent('session'), failed])) as PageEvent & { session: string };
        let answered!: () => void;
        const done = new Promise<void>((r) => (answered = r));
        ws = await client.channel(session, 'answerer', (msg: SignalMessage) => {
          try {
            if ('sdp' in msg && msg.sdp.type === 'offer' && streamId === undefined) {
              const offer = parseSdp(msg.sdp.sdp);
              const section = offer.streams.findIndex((s) => s.mid === MID);
              const id = a.addStream(offer.streams[section]?.components ?? 1);
              streamId = id;
              agentReady = ready(a, id);
              applied = performance.now();
              applyDescription(a, id, offer, section);
              if (config.trickle) {
                // The answer without candidates (RFC 8840), gathering at once; the candidates follow the answer one by one.
                sdp = agentSdp(a, id, 'active', false, fp);
                const posted = client.answer(session, sdp).then(() => session);
                background(posted);
                background(trickle(a, id, posted, 'answerer'));
              } else {
                background(a.gatherCandidates(id).then(() => client.answer(session, (sdp = agentSdp(a, id, 'active', true, fp)))));
              }
              answered();
            } else if ('ice' in msg && streamId !== undefined) remoteIce(a, streamId, msg.ice);
          } catch (err) {
            fail(err);
          }
        });
        await Promise.race([done, failed]);
      } else {
        // The agent offers (controlling); the browser answers.
        const a = makeAgent(true);
        const id = a.addStream(1);
        streamId = id;
        agentReady = ready(a, id);
        let session: string;
        if (config.trickle) {
          // The offer without candidates, gathering at once; the candidates follow the offer one by one.
          const offered = client.offer((sdp = agentSdp(a, id, 'actpass', false, fp)));
          background(trickle(a, id, offered, 'offerer'));
          session = await Promise.race([offered, failed]);
        } else {
          await a.gatherCandidates(id);
          session = await client.offer((sdp = agentSdp(a, id, 'actpass', true, fp)));
        }
        ws = await client.channel(session, 'offerer', (msg: SignalMessage) => {
          try {
            if ('sdp' in msg && msg.sdp.type === 'answer') {
              applied = performance.now();
              applyDescription(a, id, parseSdp(msg.sdp.sdp), MID);
            } else if ('ice' in msg) remoteIce(a, id, msg.ice);
          } catch (err) {
            fail(err);
          }
        });
        launch({ mode: 'answer', session });
      }
    })();
    flow.catch(() => undefined); // seen in the race below
    await Promise.race([flow, failed]);
    const [done] = await Promise.race([Promise.all([pageEvent('done'), agentReady]), failed]) as [PageEvent & Record<string, unknown>, void];
    // The browser's .local names: resolved after the pair may be up already; the agent takes the answer in the turn it comes.
    await Promise.race([Promise.all(resolutions), failed]);
    await new Promise((r) => setImmediate(r));
    const side = (e: Record<string, unknown>): Omit<BrowserSide, 'peer' | 'ua'> => ({
      srdToConnectedMs: (e.connectedAt as number) - (e.srdAt as number),
      state: e.state as string,
      selected: e.selected as BrowserSide['selected'],
      dump: e.dump,
      states: e.states as unknown[],
    });
    const browser: BrowserSide = { ua: events.find((e) => e.ua)?.ua as string | undefined, ...side(done) };
    if (done.peer) browser.peer = side(done.peer as Record<string, unknown>);
    let agentSide: AgentSide | undefined;
    if (agent && streamId !== undefined) {
      const pair = agent.getSelectedPair(streamId, 1);
      const at = (s: string) => states.find((x) => x.state === s)?.t;
      agentSide = {
        role: agent.controllingMode ? 'controlling' : 'controlled',
        lite: config.lite,
        toReadyMs: at('ready')! - applied,
        local: endpoint(pair?.local),
        remote: endpoint(pair?.remote),
        remoteCandidates: agent.getRemoteCandidates(streamId, 1).map((c) => serializeCandidate(c)),
        skipped,
        resolved,
        states: states.map((s) => ({ state: s.state, t: s.t - applied })),
        sdp,
      };
      const connected = at('connected');
      if (connected !== undefined) agentSide.toConnectedMs = connected - applied;
    }
    out({ type: 'result', ok: true, config, browser, ...(agentSide ? { agent: agentSide } : {}), warnings });
  } catch (err) {
    let diag: unknown;
    if (agent && streamId !== undefined) {
      try {
        diag = { states, skipped, pairs: agent.getPairs(streamId), stats: agent.getStats(), remote: agent.getRemoteCandidates(streamId, 1).map((c) => serializeCandidate(c)), sdp };
      } catch (e) {
        diag = String(e);
      }
    }
    out({ type: 'result', ok: false, config, error: (err as Error).message, events, agent: diag, log: log.slice(-300), chromium: chromiumErr.slice(-4000) });
  } finally {
    clearTimeout(timer);
    closing = true;
    await killChromium();
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (e) {
        process.stderr.write(`driver: closing: ${(e as Error).message}\n`);
      }
    }
    // Let closed handles go, then say what is left (nothing, or the process would not exit).
    await new Promise((r) => setImmediate(r));
    out({ type: 'closed', handles: leftOpen() });
  }
}

const config = JSON.parse(process.argv[2] ?? '{}') as DriverConfig;
await main(config);
