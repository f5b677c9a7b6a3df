/** Small helpers for benchmark figures: every figure is a median with min and max over repeats. */
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
