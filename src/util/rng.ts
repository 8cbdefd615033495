/**
 * A small seeded PRNG (mulberry32). Its whole state is one uint32, so a training run
 * can save it in a checkpoint and resume with exactly the same random stream.
 */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  get state(): number {
    return this.s;
  }

  set state(v: number) {
    this.s = v >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** A uint32, e.g. to seed TF.js random ops. */
  uint32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** k distinct elements drawn uniformly from `pool` (partial Fisher-Yates; pool is not modified). */
  sample(pool: ArrayLike<number>, k: number): number[] {
    const n = pool.length;
    if (k > n) throw new Error(`cannot draw ${k} distinct items from ${n}`);
    // Sparse partial shuffle: O(k) memory regardless of the pool size.
    const swapped = new Map<number, number>();
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.next() * (n - i));
      const vj = swapped.has(j) ? swapped.get(j)! : j;
      const vi = swapped.has(i) ? swapped.get(i)! : i;
      swapped.set(j, vi);
      out.push(pool[vj]);
    }
    return out;
  }
}

/** Mixes several integers into one uint32 seed (for per-epoch / per-step seeds). */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h ^= x >>> 0;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** n standard normal draws from `rng` (Box-Muller), so resumed runs draw the same noise. */
export function normals(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rng.next(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * rng.next();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/**
 * Runs `fn` with Math.random replaced by Rng(seed), then restores it. TF.js layers draw initial
 * weights (tf.randomUniform without a seed seeds itself from Math.random), dropout masks and
 * fit()'s shuffling from Math.random, so a classifier built and trained inside is reproducible
 * on a given backend. Nothing else may run concurrently that expects the real Math.random.
 */
export async function withSeededMathRandom<T>(seed: number, fn: () => Promise<T>): Promise<T> {
  const random = Math.random;
  const rng = new Rng(seed);
  Math.random = () => rng.next();
  try {
    return await fn();
  } finally {
    Math.random = random;
  }
}
