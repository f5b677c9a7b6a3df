/**
 * The pion interop peer (spec/interop/pion-peer/main.go, pion/ice v2 speaking
 * the line protocol of peer-protocol.md), built on first use.
 *
 * It is built against Debian's packaged Go sources (golang-github-pion-ice.v2-dev
 * and its dependencies under /usr/share/gocode) with Debian's Go (golang-go),
 * in GOPATH mode: no module is downloaded, nothing is fetched. The binary goes
 * to a cache directory under the system temp dir, keyed by the source, the Go
 * version and the pion sources, so the tests and the bench build it once and
 * reuse it; nothing built is checked in. A build writes a temporary file and
 * renames it into place, so two test files building at once both end up with
 * a complete binary.
 *
 * pionPeer() resolves with the binary's path, or with `missing` (Go or the
 * pion sources are not installed: the caller skips outside CI and fails in
 * CI), or with `failed` (they are there but the build failed: always a
 * failure).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where Debian installs packaged Go sources (dh-golang's GOPATH). */
export const GOCODE = '/usr/share/gocode';
export const PION_ICE_SRC = join(GOCODE, 'src/github.com/pion/ice/v2');
/** Debian packages that provide what the build needs (.ci/run installs them). */
export const PION_DEBS = 'golang-go golang-github-pion-ice.v2-dev';

export type PionPeer =
  | { ok: true; path: string; goVersion: string; built: boolean }
  | { ok: false; missing: true; reason: string }
  | { ok: false; missing: false; reason: string };

/** main.go, whether this module runs from the sources (spec/support) or from dist/spec/support. */
function sourceFile(): string | undefined {
  const candidates = [
    new URL('../interop/pion-peer/main.go', import.meta.url),
    new URL('../../../spec/interop/pion-peer/main.go', import.meta.url),
  ].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p));
}

/** The go command: $GO, else `go` on PATH, else Debian's /usr/bin/go and /usr/lib/go/bin/go. */
function findGo(): { go: string; version: string } | undefined {
  const candidates = [process.env.GO, 'go', '/usr/bin/go', '/usr/lib/go/bin/go'].filter((x): x is string => !!x);
  for (const go of candidates) {
    const r = spawnSync(go, ['version'], { encoding: 'utf8', timeout: 30_000 });
    if (r.status === 0 && /^go version /.test(r.stdout)) return { go, version: r.stdout.trim() };
  }
  return undefined;
}

/** What the build depends on besides main.go: the pion/ice sources (names and mtimes). */
function pionFingerprint(): string {
  return readdirSync(PION_ICE_SRC)
    .filter((f) => f.endsWith('.go') || f === 'go.mod')
    .sort()
    .map((f) => `${f}:${statSync(join(PION_ICE_SRC, f)).mtimeMs}`)
    .join(',');
}

let pending: Promise<PionPeer> | undefined;

/** Builds the pion peer once per process (and once per source version across processes). */
export function pionPeer(): Promise<PionPeer> {
  pending ??= build();
  return pending;
}

async function build(): Promise<PionPeer> {
  const src = sourceFile();
  if (src === undefined) return { ok: false, missing: false, reason: 'spec/interop/pion-peer/main.go is missing' };
  const go = findGo();
  if (go === undefined) {
    return { ok: false, missing: true, reason: `Go is not installed (no \`go\` on PATH nor /usr/bin/go; Debian: apt-get install ${PION_DEBS})` };
  }
  if (!existsSync(join(PION_ICE_SRC, 'agent.go'))) {
    return { ok: false, missing: true, reason: `the pion/ice v2 sources are not in ${PION_ICE_SRC} (Debian: apt-get install ${PION_DEBS})` };
  }
  const source = readFileSync(src);
  const key = createHash('sha256').update(source).update(go.version).update(pionFingerprint()).digest('hex').slice(0, 16);
  const cache = join(tmpdir(), 'ice-agent-pion-peer');
  const binary = join(cache, `pion-peer-${key}`);
  if (existsSync(binary)) return { ok: true, path: binary, goVersion: go.version, built: false };

  mkdirSync(cache, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // GOPATH mode over Debian's tree: imports resolve to /usr/share/gocode, never to a module proxy.
    GO111MODULE: 'off',
    GOPATH: `${join(cache, 'gopath')}:${GOCODE}`,
    GOCACHE: join(cache, 'gocache'),
    GOFLAGS: '',
    GOPROXY: 'off',
    GOTOOLCHAIN: 'local',
    // Pure Go: no C compiler needed.
    CGO_ENABLED: '0',
  };
  const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
    execFile(go.go, ['build', '-o', partial, src], { env, timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, output: `${stdout}${stderr}${err && code === null ? err.message : ''}` });
    });
  });
  if (result.code !== 0 || !existsSync(partial)) {
    rmSync(partial, { force: true });
    return { ok: false, missing: false, reason: `go build of ${src} failed (${go.version}):\n${result.output.trim()}` };
  }
  renameSync(partial, binary);
  return { ok: true, path: binary, goVersion: go.version, built: true };
}
