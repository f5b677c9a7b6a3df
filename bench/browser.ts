/**
 * A real browser: headless Chromium connecting to ice-agent, against two
 * Chromium peer connections in one page, in the same run and the same
 * network namespace as spec/browser.test.ts (spec/support/browser/: loopback
 * and a bridge without ports; needs root and `chromium`, skipped with the
 * reason otherwise).
 *
 * Both rows are the same exchange, without trickle: the browser offers a
 * data channel after gathering, the other side answers with its candidates.
 * The figure is the browser's setRemoteDescription(answer) → ICE
 * `connected`, on the page's clock; for ice-agent also its own remote
 * description (the offer) → component `ready`, which includes its gathering
 * and the answer's way through the signalling server. Each run starts a
 * fresh browser (not timed). Nothing here is asserted.
 */
import { cleanupStale } from '../spec/support/netns.js';
import { browserAvailable, createBrowserNamespace } from '../spec/support/browser/namespace.js';
import { runCase } from '../spec/support/browser/harness.js';
import { figure, ratio, type Figure } from './stats.js';

export interface BrowserBenchResult {
  /** Chromium's version line, when it ran. */
  chromium?: string;
  skipped?: string;
  /** Chromium ↔ ice-agent (controlled, answering). */
  iceAgent?: { browserMs: Figure; agentReadyMs: Figure };
  /** Chromium ↔ Chromium: the offerer, and the answerer (its setRemoteDescription(offer) → connected, gathering included). */
  chromiumPair?: { browserMs: Figure; answererMs: Figure };
  /** ice-agent's browserMs over Chromium's, medians. */
  ratio?: number;
  errors: string[];
}

export async function benchBrowser(repeats: number, log: (s: string) => void = () => undefined): Promise<BrowserBenchResult> {
  const av = await browserAvailable();
  if (!av.ok) return { skipped: av.reason, errors: [] };
  await cleanupStale().catch(() => []);
  const ns = await createBrowserNamespace();
  const ice = { browser: [] as number[], agent: [] as number[] };
  const pair = { browser: [] as number[], answerer: [] as number[] };
  const errors: string[] = [];
  try {
    for (let i = 0; i < repeats; i++) {
      // Interleaved, so that both see the same machine.
      const a = (await runCase(ns, { mode: 'offer' })).result;
      if (a.ok && a.agent) {
        ice.browser.push(a.browser.srdToConnectedMs);
        ice.agent.push(a.agent.toReadyMs);
      } else errors.push(`ice-agent run ${i}: ${a.ok ? 'no agent side' : a.error}`);
      const b = (await runCase(ns, { mode: 'pair' })).result;
      if (b.ok && b.browser.peer) {
        pair.browser.push(b.browser.srdToConnectedMs);
        pair.answerer.push(b.browser.peer.srdToConnectedMs);
      } else errors.push(`chromium pair run ${i}: ${b.ok ? 'no answerer side' : b.error}`);
      log(`browser: run ${i + 1}/${repeats}: ice-agent ${ice.browser.at(-1)?.toFixed(1) ?? 'failed'} ms, chromium ${pair.browser.at(-1)?.toFixed(1) ?? 'failed'} ms`);
    }
  } finally {
    await ns.destroy();
  }
  const iceAgent = { browserMs: figure(ice.browser, 'ms'), agentReadyMs: figure(ice.agent, 'ms') };
  const chromiumPair = { browserMs: figure(pair.browser, 'ms'), answererMs: figure(pair.answerer, 'ms') };
  const r = ratio(iceAgent.browserMs, chromiumPair.browserMs);
  return { chromium: av.chromium, iceAgent, chromiumPair, ...(r !== undefined ? { ratio: r } : {}), errors };
}
