import * as tf from "@tensorflow/tfjs";
import type { Params } from "../model/params.js";

/**
 * An exponential moving average of the model's weights (`train --ema-decay D`), the weights that
 * evaluation, the checkpoint's weights.bin and the ONNX graphs use; the optimizer keeps stepping
 * the raw weights, which the checkpoint keeps in train-weights.bin for --resume.
 *
 * Updated every `every` steps with decay D^every (the same average as per step, up to the few
 * steps in between, at a quarter of the kernels: ~220 per update for this model's 54 variables).
 */
export class WeightAverage {
  private readonly shadow = new Map<string, tf.Variable>();
  private readonly keep: number;

  constructor(
    private readonly params: Params,
    readonly decay: number,
    readonly every = 4,
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`EMA decay must be in (0, 1), got ${decay}`);
    this.keep = decay ** every;
    // A variable shares its initial value's data (reference counted) until either is assigned.
    for (const [name, v] of params.vars) this.shadow.set(name, tf.variable(v, false));
  }

  /** Call after every optimizer step; `step` counts steps from the start of the run. */
  afterStep(step: number): void {
    if (step % this.every !== 0) return;
    tf.tidy(() => {
      for (const [name, v] of this.params.vars) {
        const s = this.shadow.get(name)!;
        s.assign(tf.add(tf.mul(s, this.keep), tf.mul(v, 1 - this.keep)));
      }
    });
  }

  /**
   * Runs `fn` with the model holding the average; `raw` gives the raw weights meanwhile (to save
   * them beside the average). The model holds the raw weights again afterwards, even if fn throws.
   */
  async withAverage<T>(fn: (raw: tf.NamedTensorMap) => Promise<T>): Promise<T> {
    this.swap();
    try {
      return await fn(Object.fromEntries(this.shadow));
    } finally {
      this.swap();
    }
  }

  /** --resume: the model was loaded with the average (weights.bin); `raw` are train-weights.bin. */
  restore(raw: tf.NamedTensorMap): void {
    for (const [name, v] of this.params.vars) this.shadow.get(name)!.assign(v);
    this.params.assign(raw, "train-weights.bin");
  }

  private swap(): void {
    tf.tidy(() => {
      for (const [name, v] of this.params.vars) {
        const s = this.shadow.get(name)!;
        const raw = v.clone();
        v.assign(s);
        s.assign(raw);
      }
    });
  }

  dispose(): void {
    for (const s of this.shadow.values()) s.dispose();
    this.shadow.clear();
  }
}
