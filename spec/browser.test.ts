/**
 * A real browser against ice-agent (issue 16; issue 10's browser rows):
 * headless Chromium (Debian's `chromium`) and an Agent reach ICE
 * `connected` through the example signalling server (examples/
 * signalling-server.ts: POST /offer, /answer, /ice and the WebSocket push),
 * with the SDP helpers (lib/sdp) on the agent's side.
 *
 * Everything runs in a network namespace the test makes (spec/support/
 * browser/namespace.ts: loopback plus a bridge without ports, so nothing
 * leaves it), in one driver process started there (spec/support/browser/
 * driver.ts): the page's HTTP server, the signalling server, the Agent and
 * Chromium. The page (spec/support/browser/page.html) drives its
 * RTCPeerConnection itself and posts what it sees back to the driver; no
 * remote-debugging protocol, no Playwright.
 *
 * ICE only: the agent's SDP has the a=fingerprint, a=setup and a=sctp-port
 * Chromium needs to accept a data channel section, but ice-agent does no
 * DTLS-SRTP, so the DTLS handshake that Chromium starts after ICE never
 * completes (its connectionState ends `failed`). What is checked is the
 * browser's iceConnectionState (`connected` or `completed`), the agent's
 * component `ready`, and that both name the same selected pair (the
 * browser's through getStats()).
 *
 * Connect times are printed as comments, never asserted.
 *
 * Needs Linux, root and `chromium`; outside CI the file is skipped with the
 * reason when one is missing, in CI (env CI set) that is a failure.
 */
import t, { type Test } from 'tap';
import { cleanupStale } from './support/netns.js';
import { browserAvailable, createBrowserNamespace, type BrowserNamespace } from './support/browser/namespace.js';
import { driverCommand, hostPort, runCase, type CaseOptions, type CaseRun, type Endpoint } from './support/browser/harness.js';

const inCI = Boolean(process.env.CI);

/** Whether the browser tests can run here, with the namespace they run in. */
async function setUp(): Promise<{ ns: BrowserNamespace; chromium: string } | { reason: string }> {
  const av = await browserAvailable();
  if (!av.ok) return { reason: av.reason };
  await cleanupStale().catch(() => []);
  try {
    return { ns: await createBrowserNamespace(), chromium: av.chromium };
  } catch (e) {
    return { reason: `cannot make the test's network namespace: ${(e as Error).message}` };
  }
}

const env = await setUp();
if ('reason' in env) {
  if (inCI) t.fail(`the browser test cannot run in CI: ${env.reason} (.ci/run installs chromium; the tests run as root)`);
  else t.plan(0, `skipped: ${env.reason}`);
} else {
  const { ns } = env;
  t.teardown(() => ns.destroy());
  t.comment(`${env.chromium}, in network namespace ${ns.name} (${ns.address} on a bridge without ports, and lo)`);
  const compiled = driverCommand().compiled;
  t.comment(compiled ? 'the driver runs from dist/ (up to date)' : 'dist/ is missing or older than the sources: the driver runs from its source through ts-node (slower to start; `npx tsc -p tsconfig.json` to build)');
  // Six cases, each a browser start and at most the driver's 20 s deadline, plus ts-node's start when not compiled.
  t.setTimeout(6 * (compiled ? 30_000 : 45_000) + 30_000);

  /**
   * One side of the browser's selected pair against the agent's: the same
   * address and port. getStats() leaves the address empty where Chromium
   * hides it — a remote peer-reflexive candidate, and its own host candidate
   * when it stands behind an mDNS name — and then only the port can be
   * compared (the namespace has a single address anyway).
   */
  const samePoint = (t: Test, browser: Record<string, unknown> | undefined, agent: Endpoint, what: string) => {
    if (browser?.address === '' || browser?.address === undefined) {
      t.equal(browser?.port, agent.port, `${what} (the port: getStats() hides the address of this ${String(browser?.candidateType)} candidate)`, { browser, agent });
    } else t.equal(hostPort(browser), hostPort(agent), what, { browser, agent });
  };

  /** Runs a case and checks what every case must show; returns the run for the case's own checks. */
  const check = async (t: Test, opts: CaseOptions, label: string): Promise<CaseRun | undefined> => {
    const leakedBefore = await ns.leakedPackets();
    const run = await runCase(ns, opts);
    const r = run.result;
    if (!r.ok) {
      t.fail(`${label}: ${r.error}`, { events: r.events.filter((e) => e.kind !== 'state' || e.what !== 'gathering'), agent: r.agent, log: r.log.slice(-120).join('\n'), chromium: r.chromium });
      return undefined;
    }
    const { browser, agent } = r;
    t.match(browser.state, /^(connected|completed)$/, `the browser's iceConnectionState is ${browser.state}`);
    t.ok(browser.selected?.local && browser.selected.remote, 'the browser reports a selected candidate pair in getStats()', { dump: browser.dump });
    if (agent) {
      t.equal(agent.states.at(-1)?.state, 'ready', 'the agent\'s component is ready', { states: agent.states });
      t.ok(agent.local.address && agent.remote.address, 'the agent has a selected pair');
      samePoint(t, browser.selected?.remote, agent.local, 'the browser\'s selected remote candidate is the agent\'s selected local one');
      samePoint(t, browser.selected?.local, agent.remote, 'the browser\'s selected local candidate is the agent\'s selected remote one');
      t.comment(`${label}: browser setRemoteDescription → ICE ${browser.state} ${browser.srdToConnectedMs.toFixed(1)} ms; `
        + `agent (${agent.lite ? 'lite, ' : ''}${agent.role}) remote description → connected ${agent.toConnectedMs?.toFixed(1) ?? 'n/a'} ms, → ready ${agent.toReadyMs.toFixed(1)} ms; `
        + `pair ${hostPort(agent.local)} (${agent.local.type}) ↔ ${hostPort(agent.remote)} (${agent.remote.type})`);
    }
    if (r.warnings.length > 0) t.comment(`${label}: the page warned: ${r.warnings.join('; ')}`);
    t.ok(run.exitedByItself, 'the driver closed everything and exited by itself', { stderr: run.stderr.slice(-3000) });
    t.same(run.handles, [], 'no handle left in the driver once the agent, servers and browser are closed');
    t.same(await ns.pids(), [], 'nothing left running in the namespace');
    const leaked = await ns.leakedPackets();
    if (leaked !== undefined) t.equal(leaked - leakedBefore!, 0, 'no unicast packet went towards the bridge: everything stayed on loopback');
    return run;
  };

  t.test('the browser offers a data channel (controlling), ice-agent answers (controlled)', async (t) => {
    await check(t, { mode: 'offer' }, 'browser offers');
  });

  t.test('ice-agent offers (controlling), the browser answers (controlled)', async (t) => {
    const run = await check(t, { mode: 'answer' }, 'ice-agent offers');
    if (run?.result.ok) t.equal(run.result.agent?.role, 'controlling');
  });

  t.test('trickle: the browser offers, candidates both ways through POST /ice and the WebSocket push', async (t) => {
    const run = await check(t, { mode: 'offer', trickle: true }, 'browser offers, trickle');
    if (run?.result.ok) t.notOk(/a=candidate/.test(run.result.agent!.sdp), 'the agent\'s answer had no candidate: they were trickled');
  });

  t.test('trickle: ice-agent offers, candidates both ways through POST /ice and the WebSocket push', async (t) => {
    const run = await check(t, { mode: 'answer', trickle: true }, 'ice-agent offers, trickle');
    if (run?.result.ok) t.notOk(/a=candidate/.test(run.result.agent!.sdp), 'the agent\'s offer had no candidate: they were trickled');
  });

  t.test('ice-agent in lite mode answers the browser', async (t) => {
    const run = await check(t, { mode: 'offer', lite: true }, 'lite answers');
    if (run?.result.ok) t.match(run.result.agent!.sdp, /a=ice-lite/, 'the answer says a=ice-lite');
  });

  t.test('mDNS: the browser hides its host address behind a .local name, ice-agent resolves it', async (t) => {
    const run = await check(t, { mode: 'offer', mdns: true }, 'mDNS host candidate');
    if (!run?.result.ok) return;
    const agent = run.result.agent!;
    t.same(agent.skipped, [], 'no remote candidate skipped (the name resolved)');
    t.ok(agent.remoteCandidates.some((c) => / typ host/.test(c) && c.includes(` ${ns.address} `)), 'the .local candidate is in as a host candidate on its address', { remote: agent.remoteCandidates });
    t.equal(agent.remote.type, 'host', 'the agent\'s selected remote candidate is that host candidate');
    t.ok(run.result.browser.selected?.local?.address === '', 'the browser\'s getStats() hides its own host address (it is behind the mDNS name)');
    for (const r of agent.resolved) t.comment(`mDNS: ${r.name} → ${r.address ?? r.error} in ${r.ms.toFixed(1)} ms`);
  });
}
