/**
 * The loopback demo: two ice-agent peers (examples/peer.ts) on 127.0.0.1,
 * paired through the line-protocol relay, then an echo data phase.
 *
 *   node dist/examples/loopback.js [--trickle] [--nomination regular|aggressive]
 *     [--count N] [--size S]
 *
 * Prints a short summary; exits non-zero if either peer failed.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseCandidate } from '../lib/index.js';
import { runPair, firstOf, timeOf, type PeerResult } from './relay.js';

const PEER = fileURLToPath(new URL('./peer.js', import.meta.url));

function usage(message: string): never {
  process.stderr.write(`loopback: ${message}\n` +
    'usage: node dist/examples/loopback.js [--trickle] [--nomination regular|aggressive] [--count N] [--size S]\n');
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    strict: true,
    allowPositionals: false,
    options: {
      trickle: { type: 'boolean', default: false },
      nomination: { type: 'string', default: 'regular' },
      count: { type: 'string', default: '1000' },
      size: { type: 'string', default: '1000' },
    },
  }).values;
} catch (err) {
  usage((err as Error).message);
}

// The peer validates --nomination, --count and --size; they pass through as given.
const common = ['--host', '127.0.0.1', '--nomination', opts.nomination, '--count', opts.count, '--size', opts.size];
if (opts.trickle) common.push('--trickle');

const run = await runPair({
  a: { cmd: process.execPath, args: [PEER, '--role', 'controlling', ...common] },
  b: { cmd: process.execPath, args: [PEER, '--role', 'controlled', ...common] },
  timeoutMs: 60_000,
  // With DEBUG set (DEBUG=ice-agent:* npm run demo), show the peers' logs as they come.
  ...(process.env.DEBUG ? { onStderr: (side: 'a' | 'b', chunk: string) => process.stderr.write(chunk.replace(/^(?=.)/gm, `[${side === 'a' ? 'controlling' : 'controlled'}] `)) } : {}),
});

const sides = [['controlling', run.a], ['controlled', run.b]] as const;
const problems: string[] = [];
if (run.timedOut) problems.push('timed out; both peers were killed');
for (const [name, r] of sides) {
  const err = firstOf(r, 'error');
  if (err) problems.push(`${name}: ${String(err.message)}`);
  if (r.code !== 0) problems.push(`${name} exited with ${r.signal ?? r.code}`);
  if (!firstOf(r, 'connected')) problems.push(`${name} never connected`);
}
const done = firstOf(run.a, 'done');
if (!done) problems.push('the controlling peer never wrote done');

const gathered = (r: PeerResult) => timeOf(r, opts.trickle ? 'end-of-candidates' : 'description');
const ms = (v: unknown) => (typeof v === 'number' ? `${v} ms` : '-');
const endpoint = (c: unknown) => {
  if (typeof c !== 'string') return '?';
  const p = parseCandidate(c);
  return `${p.address}:${p.port} (${p.type})`;
};

const [ca, cb] = [firstOf(run.a, 'connected'), firstOf(run.b, 'connected')];
console.log(`ice-agent loopback: ${opts.nomination} nomination, trickle ${opts.trickle ? 'on' : 'off'}`);
console.log(`  start-up        controlling ${ms(gathered(run.a))}, controlled ${ms(gathered(run.b))}` +
  ` (from spawning the process to its ${opts.trickle ? 'end-of-candidates' : 'description'}: Node start-up and gathering)`);
console.log(`  connected       controlling ${ms(ca?.ms)}, controlled ${ms(cb?.ms)} (from remote credentials)`);
if (ca) console.log(`  selected pair   ${endpoint(ca.local)} <-> ${endpoint(ca.remote)}`);
if (done) {
  const sent = Number(done.sent);
  const echoed = Number(done.echoed);
  const secs = Number(done.ms) / 1000;
  const size = Number(opts.size);
  console.log(`  data            ${echoed}/${sent} datagrams of ${size} B echoed in ${done.ms} ms`);
  if (secs > 0) {
    const mbps = (echoed * size * 8) / secs / 1e6;
    console.log(`  throughput      ${mbps.toFixed(1)} Mbit/s each way, ${Math.round(echoed / secs)} datagrams/s`);
  }
}

if (problems.length > 0) {
  console.log(`FAILED:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  for (const [name, r] of sides) {
    const tail = r.stderr.trimEnd().split('\n').slice(-20).join('\n    ');
    if (tail) console.log(`  ${name} stderr (last lines):\n    ${tail}`);
  }
  process.exitCode = 1;
}
