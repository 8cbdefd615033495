import * as tf from "@tensorflow/tfjs";
import { Rng } from "../util/rng.js";
import { InputError } from "../util/errors.js";
import { validateConfig } from "../checkpoint/model-config.js";
import { fromFile, type StandardisationFile } from "../checkpoint/standardisation.js";
import { CLASSIFIER_UNITS, MAX_PARAMETERS, convSizes, type ModelConfig } from "./config.js";
import { likelihoodFor, type Likelihood } from "./likelihood.js";
import { Params, addDense, biasRelu, conv2dFewOutputs, dense } from "./params.js";

/**
 * Parameter name prefixes, one per network. They are part of the checkpoint format
 * (and of the ONNX export), so do not rename them.
 */
export const NETS = {
  /** f: per-image conv stack + dense (invariant path). */
  f: "inv_f",
  /** g: dense hidden + linear d_v, applied after the set mean. */
  g: "inv_g",
  /** q(z | x, v). */
  enc: "enc",
  /** p(x | v, z). */
  dec: "dec",
  /** q(y | x): only in semi-supervised models (config.classifier). */
  cls: "cls",
} as const;

/** Identity forward, zero gradient: TF.js has no stop_gradient op. */
const stopGradient = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
  value: (args[0] as tf.Tensor).clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as <T extends tf.Tensor>(x: T) => T;

/** Inverted-dropout masks for q(y | x)'s two dense layers (values 0 or 1/keep), drawn by the caller. */
export interface DropoutMasks {
  h1: tf.Tensor2D;
  h2: tf.Tensor2D;
}

/**
 * EquiVAE networks (Feige 2019, Eq. 2-4) over named variables. Every method is a pure
 * function of its inputs and the parameters; callers own tf.tidy.
 */
export class EquiVAE {
  readonly params: Params;
  readonly likelihood: Likelihood;
  private readonly sizes: Array<[number, number]>;
  /** config.standardise: the statistics (identity until set) and their tensors, [H, W, C]. */
  private stdFile?: StandardisationFile;
  private stdMean?: tf.Tensor3D;
  private stdStd?: tf.Tensor3D;
  private logStdSum = 0;
  /** A fixed Gaussian scale's log sigma (a learned one is the parameter dec/log_sigma). */
  private fixedLogSigma?: tf.Scalar;

  constructor(
    readonly config: ModelConfig,
    seed = 1,
  ) {
    validateConfig(config);
    this.params = new Params(new Rng(seed));
    this.sizes = convSizes(config);
    this.build();
    const n = this.params.count();
    if (n >= MAX_PARAMETERS) {
      this.params.dispose();
      throw new InputError(
        `this configuration has ${n.toLocaleString("en")} parameters; the limit is 1,000,000`,
      );
    }
    if (config.standardise) {
      const d = config.height * config.width * config.channels;
      this.setStandardisation({
        shape: [config.height, config.width, config.channels],
        count: 0,
        stdFloor: 0,
        mean: new Array<number>(d).fill(0),
        std: new Array<number>(d).fill(1),
      });
    }
    const scale = config.gaussianScale ?? "learned";
    if (config.likelihood === "gaussian" && scale !== "learned") {
      this.fixedLogSigma = tf.keep(tf.scalar(Math.log(scale)));
    }
    this.likelihood = likelihoodFor(config.likelihood, {
      logSigma: () => this.fixedLogSigma ?? this.params.get(`${NETS.dec}/log_sigma`),
      toModel: (x) => this.standardise(x),
      toData: (out) =>
        this.stdMean ? (tf.add(tf.mul(out, this.stdStd!), this.stdMean) as tf.Tensor4D) : out,
      logStdSum: () => this.logStdSum,
    });
  }

  /**
   * The standardisation statistics, per pixel and channel (config.standardise models; mean 0 /
   * std 1 until set), as stored in the checkpoint's standardisation.json.
   */
  get standardisation(): StandardisationFile | undefined {
    return this.stdFile;
  }

  /** Sets the statistics (the trainer, from the training split; loadCheckpoint, from the file). */
  setStandardisation(f: StandardisationFile): void {
    const c = this.config;
    if (!c.standardise) throw new Error("this model does not standardise its inputs (config.standardise)");
    const shape: [number, number, number] = [c.height, c.width, c.channels];
    const s = fromFile(f, shape, "standardisation");
    tf.dispose([this.stdMean, this.stdStd].filter((t) => t !== undefined));
    this.stdMean = tf.keep(tf.tensor3d(s.mean, shape));
    this.stdStd = tf.keep(tf.tensor3d(s.std, shape));
    this.logStdSum = s.std.reduce((a, x) => a + Math.log(x), 0);
    this.stdFile = { ...f, shape, mean: Array.from(s.mean), std: Array.from(s.std) };
  }

  /**
   * Data -> model input, [..., H, W, C]: (x - mean) / std per pixel and channel, or x itself (no
   * standardisation).
   */
  standardise<T extends tf.Tensor>(x: T): T {
    return this.stdMean ? (tf.div(tf.sub(x, this.stdMean), this.stdStd!) as T) : x;
  }

  get parameterCount(): number {
    return this.params.count();
  }

  /** Parameter counts per network, for logs and the manifest. */
  parameterBreakdown(): Record<string, number> {
    return Object.fromEntries(
      Object.entries(NETS)
        .filter(([k]) => k !== "cls" || this.config.classifier)
        .map(([k, p]) => [k, this.params.count(`${p}/`)]),
    );
  }

  private build(): void {
    const c = this.config;
    const p = this.params;
    const H = c.hidden;
    const flat = this.flatSize();
    const addConvStack = (prefix: string) => {
      let inC = c.channels;
      c.filters.forEach((f, i) => {
        const k = c.kernel;
        p.add(`${prefix}/conv${i}/kernel`, [k, k, inC, f], k * k * inC, k * k * f);
        p.zeros(`${prefix}/conv${i}/bias`, [f]);
        inC = f;
      });
      addDense(p, `${prefix}/dense`, flat, H);
    };
    addConvStack(NETS.f);
    addDense(p, `${NETS.g}/hidden`, H, H);
    addDense(p, `${NETS.g}/out`, H, c.dv);

    addConvStack(NETS.enc);
    addDense(p, `${NETS.enc}/v`, c.dv, H);
    for (const head of ["mu", "logvar"]) {
      addDense(p, `${NETS.enc}/${head}_hidden`, 2 * H, H);
      addDense(p, `${NETS.enc}/${head}_out`, H, c.dz);
    }

    addDense(p, `${NETS.dec}/v`, c.dv, H);
    addDense(p, `${NETS.dec}/z`, c.dz, H);
    addDense(p, `${NETS.dec}/hidden`, 2 * H, flat);
    // Transposed convs mirror conv layers L-1..1; a final stride-1 conv maps to the image's channels.
    const L = c.filters.length;
    for (let i = L - 1; i >= 1; i--) {
      const k = c.kernel;
      const inC = c.filters[i];
      const outC = c.filters[i - 1];
      // conv2dTranspose filters are [k, k, outC, inC].
      p.add(`${NETS.dec}/deconv${i}/kernel`, [k, k, outC, inC], k * k * inC, k * k * outC);
      p.zeros(`${NETS.dec}/deconv${i}/bias`, [outC]);
    }
    const k = c.kernel;
    p.add(
      `${NETS.dec}/out/kernel`,
      [k, k, c.filters[0], c.channels],
      k * k * c.filters[0],
      k * k * c.channels,
    );
    p.zeros(`${NETS.dec}/out/bias`, [c.channels]);
    // A learned Gaussian scale: log sigma per channel, starting at sigma = 1 (no Rng draw).
    if (c.likelihood === "gaussian" && (c.gaussianScale ?? "learned") === "learned") {
      p.zeros(`${NETS.dec}/log_sigma`, [c.channels]);
    }

    // q(y | x) last, so the other networks start exactly as in a supervised model of the same seed.
    if (c.classifier) {
      addConvStack(NETS.cls);
      const [u1, u2] = CLASSIFIER_UNITS;
      addDense(p, `${NETS.cls}/h1`, H + c.dv, u1);
      addDense(p, `${NETS.cls}/h2`, u1, u2);
      addDense(p, `${NETS.cls}/out`, u2, c.numClasses);
    }
  }

  private flatSize(): number {
    const [h, w] = this.sizes[this.sizes.length - 1];
    return h * w * this.config.filters[this.config.filters.length - 1];
  }

  /**
   * Conv stack + dense (ReLU) of a network: [N,H,W,C] pixels in [0, 1] -> [N, hidden]. The pixels
   * are standardised first when the model standardises (config.standardise).
   */
  private convStack(prefix: string, x: tf.Tensor4D): tf.Tensor2D {
    const c = this.config;
    let h: tf.Tensor4D = this.standardise(x);
    c.filters.forEach((_, i) => {
      const y = tf.conv2d(
        h,
        this.params.get(`${prefix}/conv${i}/kernel`) as tf.Tensor4D,
        c.strides[i],
        "same",
      );
      h = biasRelu(y, this.params.get(`${prefix}/conv${i}/bias`)) as tf.Tensor4D;
    });
    return dense(this.params, `${prefix}/dense`, tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D, "relu");
  }

  /** f(x): [N,H,W,C] -> [N, hidden]. */
  f(x: tf.Tensor4D): tf.Tensor2D {
    return this.convStack(NETS.f, x);
  }

  /** g(mean of f): [N, hidden] -> v [N, dv]. */
  g(h: tf.Tensor2D): tf.Tensor2D {
    return dense(this.params, `${NETS.g}/out`, dense(this.params, `${NETS.g}/hidden`, h, "relu"));
  }

  /** The n = 1 invariant embedding v(x) = g(f(x)). */
  invariant(x: tf.Tensor4D): tf.Tensor2D {
    return this.g(this.f(x));
  }

  /**
   * Set embeddings (Eq. 2): `avg` is a [B, P] matrix whose row b averages the f outputs of
   * target b's context images among the P rows of `context`.
   */
  setInvariant(context: tf.Tensor4D, avg: tf.Tensor2D): tf.Tensor2D {
    return this.g(tf.matMul(avg, this.f(context)));
  }

  /** q(z | x, v): mean and log-variance, each [N, dz]. Same as encodeHead(encodeX(x), v). */
  encode(x: tf.Tensor4D, v: tf.Tensor2D): { mu: tf.Tensor2D; logvar: tf.Tensor2D } {
    return this.encodeHead(this.encodeX(x), v);
  }

  /**
   * The part of q(z | x, v) that sees only x: its conv stack + dense, [N, hidden]. It does not
   * depend on v, so the semi-supervised U(x) computes it once per x and reuses it for all K classes.
   */
  encodeX(x: tf.Tensor4D): tf.Tensor2D {
    return this.convStack(NETS.enc, x);
  }

  /** The rest of q(z | x, v) given hx = encodeX(x) and v (row for row): mu and log-variance, [N, dz]. */
  encodeHead(hx: tf.Tensor2D, v: tf.Tensor2D): { mu: tf.Tensor2D; logvar: tf.Tensor2D } {
    const p = this.params;
    const hv = dense(p, `${NETS.enc}/v`, v, "relu");
    const h = tf.concat([hx, hv], 1);
    const head = (name: string) =>
      dense(p, `${NETS.enc}/${name}_out`, dense(p, `${NETS.enc}/${name}_hidden`, h, "relu"));
    return { mu: head("mu"), logvar: head("logvar") };
  }

  /**
   * p(x | v, z): the raw decoder output, [N,H,W,C]: Bernoulli logits, or Gaussian means in the
   * model's units (standardised when config.standardise; `likelihood.mean` maps them to pixels).
   */
  decode(v: tf.Tensor2D, z: tf.Tensor2D): tf.Tensor4D {
    const c = this.config;
    const p = this.params;
    const n = v.shape[0];
    const a = dense(p, `${NETS.dec}/v`, v, "relu");
    const b = dense(p, `${NETS.dec}/z`, z, "relu");
    const h0 = dense(p, `${NETS.dec}/hidden`, tf.concat([a, b], 1), "relu");
    const L = c.filters.length;
    const [sh, sw] = this.sizes[L];
    let h = tf.reshape(h0, [n, sh, sw, c.filters[L - 1]]) as tf.Tensor4D;
    for (let i = L - 1; i >= 1; i--) {
      const [oh, ow] = this.sizes[i];
      const y = tf.conv2dTranspose(
        h,
        p.get(`${NETS.dec}/deconv${i}/kernel`) as tf.Tensor4D,
        [n, oh, ow, c.filters[i - 1]],
        c.strides[i],
        "same",
      );
      h = biasRelu(y, p.get(`${NETS.dec}/deconv${i}/bias`)) as tf.Tensor4D;
    }
    const out = conv2dFewOutputs(h, p.get(`${NETS.dec}/out/kernel`) as tf.Tensor4D, c.strides[0]);
    return tf.add(out, p.get(`${NETS.dec}/out/bias`));
  }

  /**
   * q(y | x) logits, [N, K]: cls conv stack + dense on x, concatenated with stop_gradient(v(x))
   * (n = 1), then dense 128 and dense 64 (ReLU, dropout when `masks` are given), then linear K.
   * `vOfX`: v(x) already computed outside the gradient tape (a training step), so that f's backward
   * pass does not run just to carry stop_gradient's zeros.
   */
  classifierLogits(x: tf.Tensor4D, masks?: DropoutMasks, vOfX?: tf.Tensor2D): tf.Tensor2D {
    if (!this.config.classifier) throw new Error("this model has no q(y|x) (not semi-supervised)");
    const p = this.params;
    const v = vOfX ?? stopGradient(this.invariant(x));
    let h = tf.concat([this.convStack(NETS.cls, x), v], 1);
    h = dense(p, `${NETS.cls}/h1`, h, "relu");
    if (masks) h = tf.mul(h, masks.h1);
    h = dense(p, `${NETS.cls}/h2`, h, "relu");
    if (masks) h = tf.mul(h, masks.h2);
    return dense(p, `${NETS.cls}/out`, h);
  }

  /** q(y | x) probabilities without dropout (inference), [N, K]. */
  classifierProbs(x: tf.Tensor4D): tf.Tensor2D {
    return tf.softmax(this.classifierLogits(x));
  }

  dispose(): void {
    this.params.dispose();
    tf.dispose([this.stdMean, this.stdStd, this.fixedLogSigma].filter((t) => t !== undefined));
    this.stdMean = this.stdStd = this.fixedLogSigma = undefined;
  }
}
