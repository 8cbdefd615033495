import * as tf from "@tensorflow/tfjs";

/** TF.js optimizers' weight entries (tfjs-core's NamedTensor, not re-exported by @tensorflow/tfjs). */
interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

interface Slot {
  /** The variable's name as the gradients name it (TF.js's global name). */
  name: string;
  shape: number[];
  size: number;
}

/**
 * Adam with TF.js's AdamOptimizer arithmetic, applied to all variables at once. TF.js's Adam runs
 * about 15 kernels per variable per step: 800 of the ~1,450 kernels of one training step of this
 * model (54 variables), each costing ~14 us of dispatch on the `tensorflow` backend whatever its
 * size. Here the gradients are concatenated into one vector, both moments and a copy of the
 * parameters live in one flat variable each, and only the updated parameters are split back:
 * ~14 kernels for the update plus 2 per variable (reshape in, reshape out; vectors skip both).
 *
 * getWeights/setWeights keep TF.js Adam's layout (iterations, then `<variable>/m` per variable,
 * then `<variable>/v`, positional), so checkpoints of either optimizer resume with the other.
 */
export class FlatAdam extends tf.Optimizer {
  static get className(): string {
    return "Adam";
  }
  private slots: Slot[] | undefined;
  private m: tf.Variable | undefined;
  private v: tf.Variable | undefined;
  /**
   * The variables' values concatenated in slot order, so that a step adds once instead of once per
   * variable (54 kernels on this model). Valid while every variable still holds the data this
   * optimizer assigned it (`held`); anything else assigning a variable (a checkpoint loaded, the
   * weight average swapped in and out) makes the next step rebuild it from the variables.
   */
  private params: tf.Variable | undefined;
  private held: object[] = [];
  /** Tensors handed out by getWeights, disposed at the next call (the caller only reads them). */
  private lent: tf.Tensor[] = [];
  private readonly epsilon: number;

  constructor(
    readonly learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    epsilon?: number,
  ) {
    super();
    this.epsilon = epsilon ?? tf.backend().epsilon();
  }

  applyGradients(grads: tf.NamedTensorMap | NamedTensor[]): void {
    const named = Array.isArray(grads)
      ? grads
      : Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
    const slots = this.slotsFor(named);
    const t = this.iterations + 1;
    tf.tidy(() => {
      const g = tf.concat(named.map((x) => flatten(x.tensor)));
      const [m, v] = this.moments(slots);
      const newM = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
      const newV = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
      m.assign(newM);
      v.assign(newV);
      // TF.js's order of operations: bias-corrected moments, then m / (sqrt(v) + eps) * -lr.
      const mHat = tf.div(newM, 1 - this.beta1 ** t);
      const vHat = tf.div(newV, 1 - this.beta2 ** t);
      const step = tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), this.epsilon)), -this.learningRate);
      const variables = slots.map((s) => tf.engine().registeredVariables[s.name]);
      const params = this.flatParams(variables);
      // One add for all variables (the same sums as adding each variable's part of the step).
      params.assign(tf.add(step, params));
      const parts = splitFlat(params, slots);
      variables.forEach((value, i) => value.assign(parts[i]));
      this.held = variables.map((value) => value.dataId);
    });
    this.incrementIterations();
  }

  /**
   * The variables' layout, fixed by the first step or by setWeights (whose stored names may come
   * from another process: the live names are adopted once the shapes agree position by position).
   */
  private slotsFor(named: NamedTensor[]): Slot[] {
    const now = named.map(({ name, tensor }) => ({ name, shape: tensor.shape, size: tensor.size }));
    if (this.slots) this.checkSameLayout(now);
    this.slots = now;
    return now;
  }

  private checkSameLayout(now: Slot[]): void {
    const key = (s: Slot) => s.shape.join("x");
    const had = this.slots!.map(key).join(",");
    if (had !== now.map(key).join(",")) {
      throw new Error(
        `FlatAdam: the gradients' shapes (${now.length} variables) do not match the optimizer's state ` +
          `(${this.slots!.length}); every step must update the same variables in the same order`,
      );
    }
  }

  private moments(slots: Slot[]): [tf.Variable, tf.Variable] {
    if (!this.m || !this.v) {
      const total = slots.reduce((a, s) => a + s.size, 0);
      this.m = tf.variable(tf.zeros([total]), false);
      this.v = tf.variable(tf.zeros([total]), false);
    }
    return [this.m, this.v];
  }

  private flatParams(variables: tf.Variable[]): tf.Variable {
    const current =
      this.params !== undefined &&
      this.held.length === variables.length &&
      variables.every((v, i) => v.dataId === this.held[i]);
    if (current) return this.params!;
    const values = tf.concat(variables.map(flatten));
    if (this.params) this.params.assign(values);
    else this.params = tf.variable(values, false);
    return this.params;
  }

  override async getWeights(): Promise<NamedTensor[]> {
    tf.dispose(this.lent);
    const iter = await this.saveIterations();
    if (!this.slots || !this.m || !this.v) return [iter];
    const slots = this.slots;
    const split = (flat: tf.Tensor, suffix: string): NamedTensor[] =>
      tf
        .split(
          flat,
          slots.map((s) => s.size),
        )
        .map((t, i) => {
          const tensor = tf.reshape(t, slots[i].shape);
          t.dispose();
          return { name: `${slots[i].name}/${suffix}`, tensor };
        });
    const out = [...split(this.m, "m"), ...split(this.v, "v")];
    this.lent = [iter.tensor, ...out.map((o) => o.tensor)];
    return [iter, ...out];
  }

  override async setWeights(weights: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weights);
    if (rest.length % 2 !== 0)
      throw new Error(`FlatAdam: ${rest.length} moment tensors (an even number expected)`);
    const k = rest.length / 2;
    const flat = (list: NamedTensor[]) => tf.concat(list.map((w) => flatten(w.tensor)));
    tf.dispose([this.m, this.v].filter((x) => x !== undefined));
    this.m = variableOf(tf.tidy(() => flat(rest.slice(0, k))));
    this.v = variableOf(tf.tidy(() => flat(rest.slice(k))));
    // The parameters' flat copy is rebuilt at the next step.
    this.held = [];
    // Names are the stored ones (possibly of another process); the first step adopts the live ones.
    this.slots = rest.slice(0, k).map((w) => ({ name: "", shape: w.tensor.shape, size: w.tensor.size }));
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  override dispose(): void {
    super.dispose();
    tf.dispose([this.m, this.v, this.params, ...this.lent].filter((x) => x !== undefined));
    this.m = this.v = this.params = undefined;
    this.held = [];
    this.lent = [];
  }
}

/**
 * The flat vector cut into the slots' shapes. TF.js's wasm and cpu backends slice in JavaScript,
 * ~40 ms for this model's 516k values (against 0.8 ms for one SplitV on tensorflow); there, one
 * read of the values (which already live in this process's memory) and one upload per slot is
 * ~1 ms. GPU backends keep the split on the device.
 */
function splitFlat(flat: tf.Tensor, slots: Slot[]): tf.Tensor[] {
  if (tf.getBackend() === "wasm" || tf.getBackend() === "cpu") {
    const values = flat.dataSync() as Float32Array;
    let at = 0;
    return slots.map((s) => tf.tensor(values.subarray(at, (at += s.size)), s.shape));
  }
  return tf
    .split(
      flat,
      slots.map((s) => s.size),
    )
    .map((t, i) => (slots[i].shape.length === 1 ? t : tf.reshape(t, slots[i].shape)));
}

/** A non-trainable variable holding t's values; t itself is disposed (a variable is a tensor of its own). */
function variableOf(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, false);
  t.dispose();
  return v;
}

/**
 * t as a vector. A reshape is a kernel (~15 us of dispatch on tfjs-node) even when it changes
 * nothing: the 27 biases of this model are vectors already.
 */
function flatten(t: tf.Tensor): tf.Tensor {
  return t.rank === 1 ? t : tf.reshape(t, [-1]);
}
