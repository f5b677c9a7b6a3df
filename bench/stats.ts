/** Small helpers for the benchmarks: every figure is a median with min and max over repeats; kernel socket counters. */
import { readFileSync } from 'node:fs';
export interface Figure {
  median: number;
  min: number;
  max: number;
  n: number;
  unit: string;
}

export function figure(samples: number[], unit: string): Figure {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { median, min: s[0] ?? NaN, max: s[n - 1] ?? NaN, n, unit };
}

export function fmt(f: Figure | undefined, digits = 2): string {
  if (!f || Number.isNaN(f.median)) return 'n/a';
  const r = (x: number) => x.toFixed(digits);
  return `${r(f.median)} ${f.unit} (${r(f.min)}–${r(f.max)}, n=${f.n})`;
}

/** Ratio of two medians, e.g. ours / reference. */
export function ratio(a: Figure | undefined, b: Figure | undefined): number | undefined {
  if (!a || !b || !b.median) return undefined;
  return a.median / b.median;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}

/** Datagrams the kernel dropped at the full receive buffer of the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp `drops`). */
export function socketDrops(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local) return Number(f[f.length - 1]);
  }
  return NaN;
}
