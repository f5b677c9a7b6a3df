/**
 * Runs one browser case: driver.ts inside the namespace (`ip netns exec NS
 * node driver CONFIG`), its JSON lines read until its result, then until it
 * exits by itself.
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriverConfig, DriverLine } from './driver.js';
import { chromiumBinary, type BrowserNamespace } from './namespace.js';
import { staleBuild } from '../build.js';

export type { DriverConfig, DriverLine, BrowserSide, AgentSide, Endpoint } from './driver.js';
export type DriverResult = Extract<DriverLine, { type: 'result' }>;

const HERE = dirname(fileURLToPath(import.meta.url));
/** The project root: the first directory up from here with a package.json (here is spec/support/browser or dist/spec/support/browser). */
function root(): string {
  for (let d = HERE; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) throw new Error(`no package.json above ${HERE}`);
  }
}
export const PAGE = join(root(), 'spec', 'support', 'browser', 'page.html');

export interface CaseOptions {
  mode: DriverConfig['mode'];
  trickle?: boolean;
  lite?: boolean;
  mdns?: boolean;
  /** The driver's own deadline for both sides to connect, ms (20 s by default). */
  timeoutMs?: number;
  /** Warm the agent's code up first (DriverConfig.warmUp); true by default. */
  warmUp?: boolean;
}

export interface CaseRun {
  result: DriverResult;
  /** Handles the driver still had after closing everything (its last line), if it printed it. */
  handles?: string[];
  /** Whether the driver exited by itself after its result (else it was killed). */
  exitedByItself: boolean;
  stderr: string;
}

/**
 * How to start the driver: compiled (dist/spec/support/browser/driver.js,
 * which `npx tsc -p tsconfig.json` builds since bench/browser.ts imports this
 * file) when that build is newer than every source it runs — lib/,
 * examples/ and driver.ts; else from its source with the TypeScript loader
 * this process runs under (tap's), which is correct but takes seconds more
 * per case to start.
 */
export function driverCommand(): { args: string[]; compiled: boolean } {
  const js = join(HERE, 'driver.js');
  if (import.meta.url.endsWith('.js') && existsSync(js)) return { args: [js], compiled: true };
  const dist = join(root(), 'dist', 'spec', 'support', 'browser', 'driver.js');
  if (existsSync(dist) && statSync(dist).mtimeMs >= statSync(join(HERE, 'driver.ts')).mtimeMs && staleBuild().length === 0) {
    return { args: [dist], compiled: true };
  }
  const loader = process.execArgv.find((a) => /^--(import|loader)=.*@tapjs[\\/]typescript/.test(a));
  if (!loader) throw new Error('driver.ts needs a TypeScript loader: run under tap, or build and run dist/');
  return { args: [loader, join(HERE, 'driver.ts')], compiled: false };
}

export function runCase(ns: BrowserNamespace, opts: CaseOptions): Promise<CaseRun> {
  const config: DriverConfig = {
    mode: opts.mode, trickle: opts.trickle ?? false, lite: opts.lite ?? false, mdns: opts.mdns ?? false,
    address: ns.address, chromium: chromiumBinary(), page: PAGE, timeoutMs: opts.timeoutMs ?? 20_000, warmUp: opts.warmUp ?? true,
  };
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // tap's coverage hooks are not wanted in the driver
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...driverCommand().args, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  let buf = '';
  let result: DriverResult | undefined;
  let handles: string[] | undefined;
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
  return new Promise<CaseRun>((resolve, reject) => {
    let killedAfterResult = false;
    // The driver's deadline plus its start (ts-node compiling) and its closing.
    const overall = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the driver gave no result within ${config.timeoutMs + 30_000} ms\n${stderr.slice(-4000)}`));
    }, config.timeoutMs + 30_000);
    let grace: NodeJS.Timeout | undefined;
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: DriverLine;
        try {
          msg = JSON.parse(line) as DriverLine;
        } catch {
          stderr += `(stdout) ${line}\n`;
          continue;
        }
        if (msg.type === 'result') {
          result = msg;
          // After its result the driver closes everything and exits; 10 s is far more than that takes.
          grace = setTimeout(() => { killedAfterResult = true; child.kill('SIGKILL'); }, 10_000);
        } else if (msg.type === 'closed') handles = msg.handles;
      }
    });
    child.once('error', (err) => { clearTimeout(overall); clearTimeout(grace); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(overall);
      clearTimeout(grace);
      if (!result) return reject(new Error(`the driver exited (${code ?? signal}) without a result\n${stderr.slice(-4000)}`));
      resolve({ result, ...(handles ? { handles } : {}), exitedByItself: !killedAfterResult && code === 0, stderr });
    });
  });
}

/** `ip:port` of an endpoint. */
export const hostPort = (e: { address?: unknown; port?: unknown } | undefined): string => `${String(e?.address)}:${String(e?.port)}`;
