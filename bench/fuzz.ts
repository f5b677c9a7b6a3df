/**
 * `npm run fuzz`: every fuzz target of spec/support/fuzz-targets.ts (the
 * parsers, the TURN allocation, the agent's inbound path) with fast-check,
 * a million inputs in all by default, split between the targets by weight.
 * Prints inputs/s per target and, for a failure, the shrunk counterexample
 * with the seed and path that replay it; exits 1 if any target failed.
 *
 *   npm run fuzz -- [--inputs N] [--seed S] [--target NAME,...] [--path P]
 *
 * Without --seed the seed is drawn at random (and printed): each run
 * explores new inputs. `--target T --seed S --path P` replays one
 * counterexample. The CI slice of the same targets is spec/fuzz.test.ts.
 */
import fc from 'fast-check';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KNOWN, TARGETS } from '../spec/support/fuzz-targets.js';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
    target: { type: 'string' },
    path: { type: 'string' },
  },
});

const total = Number(values.inputs);
if (!Number.isInteger(total) || total < 1) throw new Error(`--inputs must be a positive integer, got ${values.inputs}`);
const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
const names = values.target?.split(',');
const targets = TARGETS.filter((t) => names === undefined || names.includes(t.name));
if (targets.length === 0) throw new Error(`no target named ${values.target}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
if (values.path !== undefined && targets.length !== 1) throw new Error('--path replays one target: give --target too');

const weights = targets.reduce((n, t) => n + t.weight, 0);
console.log(`fuzz: seed ${seed}, ${total} inputs over ${targets.length} targets (fast-check ${fc.__version}, Node ${process.version})\n`);
console.log(`${'target'.padEnd(22)} ${'inputs'.padStart(9)} ${'seconds'.padStart(8)} ${'inputs/s'.padStart(9)}  result`);

let inputs = 0;
let failures = 0;
const started = performance.now();
for (const target of targets) {
  // Rounded up, so that the targets together run at least the total asked for.
  const numRuns = Math.max(1, Math.ceil((total * target.weight) / weights));
  const { property, close, detail } = await target.create(seed);
  const t0 = performance.now();
  const details = await fc.check(property, { numRuns, seed, ...(values.path !== undefined ? { path: values.path } : {}) });
  const seconds = (performance.now() - t0) / 1000;
  await close?.();
  const ran = details.failed ? details.numRuns : numRuns;
  inputs += ran;
  const rate = Math.round(ran / seconds);
  const result = details.failed ? 'FAILED' : 'ok';
  console.log(`${target.name.padEnd(22)} ${String(ran).padStart(9)} ${seconds.toFixed(1).padStart(8)} ${String(rate).padStart(9)}  ${result}`);
  if (detail) console.log(`  ${detail()}`);
  if (details.failed) {
    failures++;
    const err = details.errorInstance;
    console.log(`  claim: ${target.claim}`);
    console.log(`  error: ${err instanceof Error ? err.message.split('\n').slice(0, 6).join('\n         ') : String(err)}`);
    console.log(`  counterexample (after ${details.numShrinks} shrinks): ${fc.stringify(details.counterexample)}`);
    console.log(`  replay: npm run fuzz -- --target ${target.name} --seed ${details.seed} --path "${details.counterexamplePath}"\n`);
  }
}
const seconds = (performance.now() - started) / 1000;
const hits = Object.entries(KNOWN).filter(([, k]) => k.hits > 0);
if (hits.length > 0) {
  console.log('\nknown findings hit (not failures: each has a todo regression test in spec/fuzz.test.ts):');
  for (const [id, k] of hits) console.log(`  ${id}: ${k.hits} inputs; ${k.where}: ${k.what}`);
}
console.log(`\n${inputs} inputs in ${seconds.toFixed(1)} s (${Math.round(inputs / seconds)}/s); ${failures} target(s) failed`);
process.exitCode = failures > 0 ? 1 : 0;
