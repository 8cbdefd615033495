import * as tf from "@tensorflow/tfjs";
import type { EquiVAE } from "../../src/model/equivae.js";
import { saveCheckpoint } from "../../src/train/checkpoint.js";
import type { Rng } from "../../src/util/rng.js";

export function uniform(rng: Rng, n: number, lo = 0, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

/** Non-zero biases (and a learned Gaussian log sigma), so that every term of a graph is exercised. */
export function perturbBiases(m: EquiVAE, rng: Rng): void {
  for (const [name, v] of m.params.vars) {
    if (name.endsWith("/bias") || name.endsWith("log_sigma"))
      v.assign(tf.tensor(uniform(rng, v.size, -0.2, 0.2), v.shape));
  }
}

/** Saves an untrained model as a complete checkpoint with random centroids (export and serving tests). */
export async function saveRandomCheckpoint(
  dir: string,
  m: EquiVAE,
  rng: Rng,
  classNames: string[],
): Promise<void> {
  const cfg = m.config;
  await saveCheckpoint(dir, {
    manifest: {
      model: cfg,
      parameterCount: m.parameterCount,
      parameters: m.parameterBreakdown(),
      dataset: { name: "random", source: "-", classNames, trainSize: 0, valSize: 0, preprocessing: "-" },
      training: {
        command: "test",
        resumedWith: [],
        options: {},
        epochsCompleted: 0,
        epochsPlanned: 0,
        backend: "wasm",
        wallSeconds: 0,
      },
      metrics: null,
    },
    model: m,
    centroids: {
      classNames,
      dv: cfg.dv,
      centroids: classNames.map(() => Array.from(uniform(rng, cfg.dv, -1, 1))),
      counts: classNames.map(() => 1),
    },
    state: { epoch: 0, step: 0, wallSeconds: 0 },
    metricsLines: [],
  });
}
