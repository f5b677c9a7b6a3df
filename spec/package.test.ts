/**
 * The package as a user gets it: `npm pack`, the tarball installed into a
 * temporary strict TypeScript consumer, one ES module and one CommonJS
 * module, each compiled (skipLibCheck off, so our .d.ts files are checked)
 * and run: two agents connect over loopback through component sockets and
 * the connect() promise.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules/.bin/tsc');

const CONSUMER = (importLine: string) => `${importLine}

async function main(): Promise<void> {
  const a = new Agent({ controllingMode: true, localAddresses: ['127.0.0.1'] });
  const b = new Agent({ localAddresses: ['127.0.0.1'] });
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  const ca = a.getLocalCredentials(sa);
  const cb = b.getLocalCredentials(sb);
  a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
  b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  const sockA: ComponentSocket = a.createSocket(sa, 1);
  const sockB = b.createSocket(sb, 1);
  const got = new Promise<string>((resolve) => sockB.on('message', (d: Buffer) => resolve(d.toString())));
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  const [pairs] = await Promise.all([a.connect(sa, { timeout: 5000 }), b.connect(sb, { timeout: 5000 })]);
  const pair: SelectedPair = pairs[0]!;
  sockA.send(Buffer.from('over the component socket'));
  const text = await got;
  const stats: string = JSON.stringify(a.getStats());
  await Promise.all([a.close(), b.close()]);
  console.log(JSON.stringify({ text, local: pair.local.type, statsBytes: stats.length }));
}
main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
`;

t.test('npm pack → install into a strict TypeScript consumer (ESM and CommonJS) → compile → run', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ice-agent-consumer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  })) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = packed[0]!.files.map((f) => f.path);
  for (const f of ['dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/sim/index.js', 'dist/examples/peer.js', 'examples/basic.ts',
    'examples/peer-protocol.md', 'README.md', 'CHANGELOG.md', 'lib/index.ts']) {
    t.ok(files.includes(f), `the tarball holds ${f} (the README links it, or source maps point at it)`);
  }
  t.notOk(files.some((f) => f.startsWith('spec/')), 'no tests in the tarball');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const [, link] of readme.matchAll(/\]\(((?:examples|lib)\/[^)#]+)\)/g)) {
    t.ok(files.includes(link!), `README link ${link} is in the tarball`);
  }

  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
  const install = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed[0]!.filename)], {
    cwd: dir, encoding: 'utf8', timeout: 180_000,
  });
  t.equal(install.status, 0, 'npm install of the tarball', { stderr: install.stderr });

  const tsconfig = (module: 'nodenext', outDir: string) => JSON.stringify({
    compilerOptions: {
      strict: true, module, moduleResolution: 'nodenext', target: 'es2022', outDir, skipLibCheck: false,
      types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')], noUnusedLocals: true,
    },
  });
  writeFileSync(join(dir, 'esm.mts'), CONSUMER("import { Agent, type ComponentSocket, type SelectedPair } from 'ice-agent';"));
  // CommonJS: require() of our ES module (Node ≥ 20.19 loads it; TypeScript 5.8+ types it under nodenext).
  writeFileSync(join(dir, 'cjs.cts'), CONSUMER(
    "import ice = require('ice-agent');\nconst { Agent } = ice;\ntype ComponentSocket = ice.ComponentSocket;\ntype SelectedPair = ice.SelectedPair;",
  ));
  writeFileSync(join(dir, 'tsconfig.json'), tsconfig('nodenext', 'out'));
  const tsc = spawnSync(TSC, ['-p', dir], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  t.equal(tsc.status, 0, 'the consumer compiles under strict, with our .d.ts checked', { stdout: tsc.stdout });
  for (const f of ['esm.mjs', 'cjs.cjs']) {
    const run = spawnSync(process.execPath, [join(dir, 'out', f)], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    t.equal(run.status, 0, `${f} runs`, { stderr: run.stderr });
    const out = JSON.parse(run.stdout.trim() || '{}') as { text?: string; local?: string; statsBytes?: number };
    t.equal(out.text, 'over the component socket', `${f}: data through the component socket`);
    t.equal(out.local, 'host');
    t.ok((out.statsBytes ?? 0) > 100, `${f}: getStats() serialises`);
  }
});
