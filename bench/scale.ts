/**
 * Cost per session at scale: N connected agent pairs in one process over
 * loopback. Time to connect them all, heap and RSS per connected agent, file
 * descriptors per agent, and CPU per second while idle with consent running.
 */
import { readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Agent } from '../lib/index.js';
import { connectedPair } from './pair.js';

function fds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return NaN;
  }
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) { g(); g(); }
}

async function connectPair(): Promise<[Agent, Agent]> {
  const { a, b } = await connectedPair();
  return [a, b];
}

export interface ScaleResult {
  pairs: number;
  agents: number;
  connectAllMs: number;
  heapPerAgentKiB: number;
  rssPerAgentKiB: number;
  fdsPerAgent: number;
  idleCpuMsPerSec: number;
  idleCpuPercentOfCore: number;
  error?: string;
}

export async function benchScale(pairs: number, idleSeconds: number, concurrency = 64): Promise<ScaleResult> {
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const fd0 = fds();
  const agents: Agent[] = [];
  const t0 = performance.now();
  let error: string | undefined;
  try {
    let next = 0;
    const worker = async () => {
      while (next < pairs) {
        next++;
        agents.push(...(await connectPair()));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, pairs) }, worker));
  } catch (e) {
    error = (e as Error).message;
  }
  const connectAllMs = performance.now() - t0;
  gc();
  const n = agents.length;
  const heap = process.memoryUsage().heapUsed - heap0;
  const rss = process.memoryUsage().rss - rss0;
  const fd = fds() - fd0;
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const cpu = process.cpuUsage(c0);
  const wall = (performance.now() - w0) / 1000;
  const cpuMsPerSec = (cpu.user + cpu.system) / 1000 / wall;
  await Promise.all(agents.map((a) => a.close()));
  return {
    pairs,
    agents: n,
    connectAllMs,
    heapPerAgentKiB: heap / n / 1024,
    rssPerAgentKiB: rss / n / 1024,
    fdsPerAgent: fd / n,
    idleCpuMsPerSec: cpuMsPerSec,
    idleCpuPercentOfCore: cpuMsPerSec / 10,
    ...(error ? { error } : {}),
  };
}
