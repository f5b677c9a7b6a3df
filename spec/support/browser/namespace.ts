/**
 * The network namespace a browser test runs in: nothing in it can reach
 * anything outside it.
 *
 * Chromium gathers no candidate at all in a namespace that has only `lo` up
 * (its network list leaves loopback interfaces out and the host counts as
 * offline; `--allow-loopback-in-peer-connection` does not change that), so
 * the namespace also has `stub0`, a bridge with no port: a dead end, where
 * whatever is sent out goes nowhere. It carries 198.51.100.10/24 (RFC 5737)
 * and the default route. The browser and the agent both use 198.51.100.10,
 * a local address of the namespace, so every datagram between them goes
 * over `lo` (the kernel routes local destinations through the loopback
 * device), and multicast (mDNS) sent to `stub0` reaches only the sockets of
 * the namespace, by multicast loopback. IPv6 is off. An iptables rule, when
 * iptables is there, drops and counts any unicast packet that would leave by
 * `stub0` (`leakedPackets()`: the tests expect none).
 *
 * The namespace is named `iceagent-<pid>-<hex>-browser`, so that
 * `cleanupStale()` of spec/support/netns.ts deletes it if this process dies
 * before `destroy()`; `destroy()` SIGKILLs whatever still runs inside it
 * (the browser and its helpers included) and deletes it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { run } from '../netns.js';

export const BROWSER_ADDRESS = '198.51.100.10';
export const STUB = 'stub0';

export interface BrowserNamespace {
  readonly name: string;
  /** The one address of the namespace besides loopback. */
  readonly address: string;
  /** Runs `ip netns exec <ns> cmd ...args`; resolves with stdout. */
  exec(cmd: string, args?: readonly string[], timeoutMs?: number): Promise<string>;
  /** Pids of the processes still in the namespace. */
  pids(): Promise<number[]>;
  /** Unicast packets that tried to leave by `stub0` (dropped); undefined without iptables. */
  leakedPackets(): Promise<number | undefined>;
  /** Kills what runs inside and deletes the namespace; idempotent. */
  destroy(): Promise<void>;
}

export type Availability = { ok: true; chromium: string } | { ok: false; reason: string };

/** The Chromium binary: `$CHROMIUM`, else `chromium` on the PATH (Debian's package). */
export function chromiumBinary(): string {
  return process.env.CHROMIUM ?? 'chromium';
}

/** Whether the browser tests can run here: Linux, root, a Chromium that starts, `ip netns`. Says why not. */
export async function browserAvailable(): Promise<Availability> {
  if (process.platform !== 'linux') return { ok: false, reason: `the browser test needs Linux network namespaces (platform is ${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, reason: `the browser test needs root for its network namespace (uid is ${process.getuid?.()})` };
  let version: string;
  try {
    version = (await run(chromiumBinary(), ['--version'], 30_000)).trim();
  } catch (e) {
    return { ok: false, reason: `no usable Chromium (\`${chromiumBinary()} --version\`: ${(e as Error).message}); Debian: apt-get install chromium` };
  }
  try {
    await run('ip', ['netns', 'list']);
  } catch (e) {
    return { ok: false, reason: `iproute2's \`ip netns\` is not usable: ${(e as Error).message}` };
  }
  return { ok: true, chromium: version };
}

const live = new Set<string>();
let hooked = false;

/** Creates the namespace (see the top of this file). Rejects, leaving nothing behind, if any step fails. */
export async function createBrowserNamespace(): Promise<BrowserNamespace> {
  const name = `iceagent-${process.pid}-${randomBytes(3).toString('hex')}-browser`;
  const ip = (args: readonly string[]) => run('ip', args);
  const exec = (cmd: string, args: readonly string[] = [], timeoutMs?: number) => run('ip', ['netns', 'exec', name, cmd, ...args], timeoutMs);
  if (!hooked) {
    hooked = true;
    // A crash or an unhandled exit: the namespace does not outlive this process.
    process.on('exit', () => {
      for (const ns of live) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
    });
  }
  let destroying: Promise<void> | undefined;
  const pids = async () => {
    try {
      return (await ip(['netns', 'pids', name])).split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const destroy = () => (destroying ??= (async () => {
    for (const pid of await pids()) try { process.kill(pid, 'SIGKILL'); } catch { /* exited */ }
    try {
      await ip(['netns', 'del', name]);
    } catch (e) {
      if ((await ip(['netns', 'list'])).split('\n').some((l) => l.split(/\s+/)[0] === name)) throw e;
    }
    live.delete(name);
  })());
  await ip(['netns', 'add', name]);
  live.add(name);
  let iptables = false;
  try {
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
    await exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await ip(['-n', name, 'link', 'add', STUB, 'type', 'bridge']);
    await ip(['-n', name, 'addr', 'add', `${BROWSER_ADDRESS}/24`, 'dev', STUB]);
    await ip(['-n', name, 'link', 'set', STUB, 'up']);
    await ip(['-n', name, 'route', 'add', 'default', 'dev', STUB]);
    try {
      await exec('iptables', ['-w', '-A', 'OUTPUT', '-o', STUB, '!', '-d', '224.0.0.0/4', '-j', 'DROP']);
      iptables = true;
    } catch {
      // No iptables: the bridge has no port anyway; only the count is missing.
    }
  } catch (e) {
    await destroy().catch(() => {});
    throw e;
  }
  return {
    name,
    address: BROWSER_ADDRESS,
    exec,
    pids,
    leakedPackets: async () => {
      if (!iptables) return undefined;
      const saved = await exec('iptables-save', ['-c', '-t', 'filter']);
      const m = /^\[(\d+):\d+\] -A OUTPUT .*-o stub0 .*-j DROP$/m.exec(saved);
      return m ? Number(m[1]) : undefined;
    },
    destroy,
  };
}
