import * as tf from "@tensorflow/tfjs";
import type { Params } from "../model/params.js";

/**
 * An exponential moving average of the model's weights (`train --ema-decay D`), the weights that
 * evaluation, the checkpoint's weights.bin and the ONNX graphs use; the optimizer keeps stepping
 * the raw weights, which the checkpoint keeps in train-weights.bin for --resume.
 *
 * Updated every `every` steps with decay D^every (the same average as per step, up to the few
 * steps in between, at a quarter of the kernels).
 */
export class WeightAverage {
  /** The average of every variable, concatenated in the order of params.vars. */
  private readonly shadow: tf.Variable;
  private readonly keep: number;

  constructor(
    private readonly params: Params,
    readonly decay: number,
    readonly every = 4,
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`EMA decay must be in (0, 1), got ${decay}`);
    this.keep = decay ** every;
    const initial = tf.tidy(() => this.flatValues());
    this.shadow = tf.variable(initial, false);
    initial.dispose();
  }

  /** Call after every optimizer step; `step` counts steps from the start of the run. */
  afterStep(step: number): void {
    if (step % this.every !== 0) return;
    tf.tidy(() => {
      const s = this.shadow;
      s.assign(tf.add(tf.mul(s, this.keep), tf.mul(this.flatValues(), 1 - this.keep)));
    });
  }

  /**
   * Runs `fn` with the model holding the average; `raw` gives the raw weights meanwhile (to save
   * them beside the average). The model holds the raw weights again afterwards, even if fn throws.
   */
  async withAverage<T>(fn: (raw: tf.NamedTensorMap) => Promise<T>): Promise<T> {
    const raw = Object.fromEntries([...this.params.vars].map(([name, v]) => [name, tf.clone(v)]));
    try {
      this.assignFlat(this.shadow);
      return await fn(raw);
    } finally {
      this.params.assign(raw, "raw weights");
      tf.dispose(Object.values(raw));
    }
  }

  /** --resume: the model was loaded with the average (weights.bin); `raw` are train-weights.bin. */
  restore(raw: tf.NamedTensorMap): void {
    tf.tidy(() => this.shadow.assign(this.flatValues()));
    this.params.assign(raw, "train-weights.bin");
  }

  /**
   * The variables as one vector: the average is then 3 kernels an update instead of 3 per variable
   * (162 for this model, each ~15 us of dispatch on tfjs-node whatever its size), plus the
   * reshapes of the 27 variables that are not vectors already.
   */
  private flatValues(): tf.Tensor1D {
    const parts = [...this.params.vars.values()].map((v) => (v.rank === 1 ? v : tf.reshape(v, [-1])));
    return tf.concat(parts) as tf.Tensor1D;
  }

  /** Cuts `flat` back into the variables' shapes and assigns them. */
  private assignFlat(flat: tf.Tensor): void {
    tf.tidy(() => {
      const vars = [...this.params.vars.values()];
      const parts = tf.split(
        flat,
        vars.map((v) => v.size),
      );
      vars.forEach((v, i) => v.assign(tf.reshape(parts[i], v.shape)));
    });
  }

  dispose(): void {
    this.shadow.dispose();
  }
}
