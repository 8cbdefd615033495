import { InputError } from "../util/errors.js";
import { rowsByClass } from "./dataset.js";
import type { Rng } from "../util/rng.js";

/**
 * The complementary sampler of Eq. 2: for a target x of class y it draws context points
 * from D_y \ {x}. Holds one index list per class over a set of labelled rows.
 */
export class ComplementarySampler {
  readonly byClass: Int32Array[];

  /**
   * @param labels label per row; rows with label < 0 are unlabelled and never drawn.
   * @param classNames used in error messages.
   */
  constructor(labels: Int32Array, classNames: string[]) {
    const lists = rowsByClass(labels, classNames.length);
    lists.forEach((l, y) => {
      if (l.length < 2) {
        throw new InputError(
          `class ${y} (${classNames[y]}) has ${l.length} labelled member${l.length === 1 ? "" : "s"}; ` +
            `every class needs at least 2 (the invariant embedding of a point is computed from other members of its class)`,
        );
      }
    });
    this.byClass = lists.map((l) => Int32Array.from(l));
  }

  /** Largest usable set size for class y: every other member. */
  maxN(y: number): number {
    return this.byClass[y].length - 1;
  }

  /** n distinct rows of class y, none equal to `target`. */
  sampleFor(target: number, y: number, n: number, rng: Rng): number[] {
    const members = this.byClass[y];
    const k = Math.min(n, members.length - 1);
    const pool = rng.sample(members, k + 1);
    const at = pool.indexOf(target);
    if (at >= 0) pool.splice(at, 1);
    else pool.splice(rng.int(0, k), 1);
    return pool;
  }

  /**
   * Context sets for a whole batch, sharing images between targets of the same class.
   * For each class present, targets are split into groups of at most `share`; each group draws
   * one pool of n+1 distinct members, and each target uses the pool minus itself (or minus a
   * random member when it is not in the pool). Every target's set is therefore a uniform
   * n-subset of D_y \ {x}, but the group shares n+1 images through f instead of n per target.
   *
   * Returns the context rows (a row may repeat across groups: see mergeRepeatedRows) and, per
   * target, the positions of its set in them.
   */
  batchContexts(
    targets: ArrayLike<number>,
    labels: Int32Array,
    n: number,
    share: number,
    rng: Rng,
  ): ContextSets {
    const groups = new Map<number, number[]>();
    for (let i = 0; i < targets.length; i++) {
      const y = labels[targets[i]];
      if (y < 0) throw new Error(`target row ${targets[i]} has no label`);
      let g = groups.get(y);
      if (!g) groups.set(y, (g = []));
      g.push(i);
    }
    const rows: number[] = [];
    const sets: number[][] = new Array(targets.length);
    for (const [y, members] of groups) {
      const k = Math.min(n, this.maxN(y));
      for (let s = 0; s < members.length; s += Math.max(1, share)) {
        const group = members.slice(s, s + Math.max(1, share));
        const pool = rng.sample(this.byClass[y], k + 1);
        const base = rows.length;
        if (group.length === 1) {
          // A lone target uses all the pool but one member: f need not run on that one (at share 1,
          // n images per target instead of n + 1). The same draws as a shared group.
          let skip = pool.indexOf(targets[group[0]]);
          if (skip < 0) skip = rng.int(0, k);
          pool.forEach((row, j) => j !== skip && rows.push(row));
          sets[group[0]] = Array.from({ length: k }, (_, j) => base + j);
          continue;
        }
        rows.push(...pool);
        for (const ti of group) {
          let skip = pool.indexOf(targets[ti]);
          if (skip < 0) skip = rng.int(0, k);
          const set: number[] = [];
          for (let j = 0; j <= k; j++) if (j !== skip) set.push(base + j);
          sets[ti] = set;
        }
      }
    }
    return { rows, sets };
  }
}

/** Context rows (training-set row indices) and, per target, the positions of its set in them. */
export interface ContextSets {
  rows: number[];
  sets: number[][];
}

/**
 * The same context sets with every row listed once: `rows` without repeats (first occurrence
 * order) and `sets` re-indexed into it. Sets drawn from a small labelled pool repeat rows (100
 * labels: a batch's ~130 context rows plus U's 100 class members are 100 distinct images), and f
 * then runs once per distinct image; the set means, and their gradients, are the same sums.
 */
export function mergeRepeatedRows({ rows, sets }: ContextSets): ContextSets {
  const at = new Map<number, number>();
  const unique: number[] = [];
  const position = rows.map((row) => {
    let j = at.get(row);
    if (j === undefined) {
      at.set(row, (j = unique.length));
      unique.push(row);
    }
    return j;
  });
  return { rows: unique, sets: sets.map((set) => set.map((i) => position[i])) };
}

/** The [B, P] averaging matrix that turns per-image f outputs into per-target set means. */
export function averagingMatrix(sets: number[][], numRows: number): Float32Array {
  const m = new Float32Array(sets.length * numRows);
  sets.forEach((set, i) => {
    for (const j of set) m[i * numRows + j] += 1 / set.length;
  });
  return m;
}
