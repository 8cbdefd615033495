import { CLASSIFIER_UNITS, convSizes, type ModelConfig } from "../model/config.js";
import { NETS } from "../model/equivae.js";
import { GraphBuilder, permute, samePads } from "./onnx-builder.js";
import type { WeightStore } from "./weights.js";
import type { Standardisation } from "../checkpoint/index.js";

/**
 * The ONNX graphs of a checkpoint, one builder each. Every graph takes NHWC float32 images in
 * [0, 1] (as TF.js does), standardises them ((x - mean) / std, when the model does), transposes
 * to NCHW inside, and transposes back to NHWC before any flatten, so weights are used exactly as
 * TF.js uses them. Adding a graph (e.g. a later
 * `classifier.onnx` for q(y|x)) means adding one entry to GRAPHS.
 */
export interface GraphDef {
  /** Key in the manifest's `onnx.graphs`. */
  name: string;
  file: string;
  doc: string;
  build(b: GraphBuilder, ctx: ExportContext): void;
}

export interface ExportContext {
  cfg: ModelConfig;
  w: WeightStore;
  /** config.standardise models: per-pixel mean and std, H*W*C each (standardisation.json). */
  std?: Standardisation;
}

/** The standardisation constants of each graph being built (a graph may run several conv stacks). */
const stdConstants = new WeakMap<GraphBuilder, { mean: string; std: string }>();

function stdInitializers(b: GraphBuilder, ctx: ExportContext): { mean: string; std: string } {
  let k = stdConstants.get(b);
  if (!k) {
    const c = ctx.cfg;
    const shape = [c.height, c.width, c.channels];
    k = {
      mean: b.float("standardise/mean", shape, ctx.std!.mean),
      std: b.float("standardise/std", shape, ctx.std!.std),
    };
    stdConstants.set(b, k);
  }
  return k;
}

/** EquiVAE.standardise on NHWC images: (x - mean) / std per pixel and channel, or x itself. */
function standardise(b: GraphBuilder, ctx: ExportContext, xNHWC: string): string {
  if (!ctx.cfg.standardise) return xNHWC;
  if (!ctx.std) throw new Error("the model standardises its inputs but the export has no statistics");
  const k = stdInitializers(b, ctx);
  return b.op("Div", [b.op("Sub", [xNHWC, k.mean]), k.std]);
}

const HWIO_TO_OIHW = [3, 2, 0, 1];
/** TF.js conv2dTranspose filters are [k, k, outC, inC]; ONNX ConvTranspose wants [inC, outC, k, k]. */
const TF_TRANSPOSED_TO_ONNX = [3, 2, 0, 1];

function dense(
  b: GraphBuilder,
  ctx: ExportContext,
  name: string,
  x: string,
  inDim: number,
  outDim: number,
  act: "relu" | "none",
  out?: string,
): string {
  const W = b.float(`${name}/kernel`, [inDim, outDim], ctx.w.get(`${name}/kernel`, [inDim, outDim]));
  const B = b.float(`${name}/bias`, [outDim], ctx.w.get(`${name}/bias`, [outDim]));
  if (act === "none") return b.op("Gemm", [x, W, B], {}, out);
  return b.op("Relu", [b.op("Gemm", [x, W, B])], {}, out);
}

/** A TF 'same' convolution (HWIO kernel) + bias on an NCHW tensor of spatial size [h, w]. */
function conv(
  b: GraphBuilder,
  ctx: ExportContext,
  name: string,
  x: string,
  inC: number,
  outC: number,
  stride: number,
  [h, w]: [number, number],
): string {
  const k = ctx.cfg.kernel;
  const [W, B] = convParams(b, ctx, name, [k, k, inC, outC], [outC, inC, k, k], HWIO_TO_OIHW, outC);
  const ph = samePads(h, stride, k);
  const pw = samePads(w, stride, k);
  return b.op("Conv", [x, W, B], {
    kernel_shape: [k, k],
    strides: [stride, stride],
    pads: [ph.before, pw.before, ph.after, pw.after],
    dilations: [1, 1],
    group: 1,
  });
}

/**
 * A conv layer's kernel, moved from TF.js's layout (`tfShape`) to ONNX's (`onnxShape`) by `perm`,
 * and its bias ([outC]), as graph initialisers.
 */
function convParams(
  b: GraphBuilder,
  ctx: ExportContext,
  name: string,
  tfShape: number[],
  onnxShape: number[],
  perm: number[],
  outC: number,
): [string, string] {
  const kernel = permute(ctx.w.get(`${name}/kernel`, tfShape), tfShape, perm);
  return [
    b.float(`${name}/kernel`, onnxShape, kernel),
    b.float(`${name}/bias`, [outC], ctx.w.get(`${name}/bias`, [outC])),
  ];
}

/**
 * TF.js conv2dTranspose(x, filter [k,k,outC,inC], [n, oh, ow, outC], stride, 'same') + bias on NCHW.
 * It is the input gradient of a forward 'same' conv from [oh, ow] to [ih, iw], so output pixel
 * o = i * stride + kk - padBefore, with that forward conv's (asymmetric) pads; output_padding
 * covers the rare case where the forward pad total was clamped at 0.
 */
function convTranspose(
  b: GraphBuilder,
  ctx: ExportContext,
  name: string,
  x: string,
  inC: number,
  outC: number,
  stride: number,
  [ih, iw]: [number, number],
  [oh, ow]: [number, number],
): string {
  const k = ctx.cfg.kernel;
  const [W, B] = convParams(b, ctx, name, [k, k, outC, inC], [inC, outC, k, k], TF_TRANSPOSED_TO_ONNX, outC);
  const ph = samePads(oh, stride, k);
  const pw = samePads(ow, stride, k);
  if (Math.ceil(oh / stride) !== ih || Math.ceil(ow / stride) !== iw) {
    throw new Error(
      `${name}: [${ih},${iw}] -> [${oh},${ow}] is not a 'same' transposed conv at stride ${stride}`,
    );
  }
  const natural = (i: number, p: { before: number; after: number }) =>
    stride * (i - 1) + k - p.before - p.after;
  const outputPadding = [oh - natural(ih, ph), ow - natural(iw, pw)];
  if (outputPadding.some((p) => p < 0 || p >= stride)) {
    throw new Error(`${name}: cannot express [${ih},${iw}] -> [${oh},${ow}] as an ONNX ConvTranspose`);
  }
  return b.op("ConvTranspose", [x, W, B], {
    kernel_shape: [k, k],
    strides: [stride, stride],
    pads: [ph.before, pw.before, ph.after, pw.after],
    output_padding: outputPadding,
    dilations: [1, 1],
    group: 1,
  });
}

/** EquiVAE.convStack: NHWC images -> ReLU convs -> NHWC flatten -> dense ReLU: [N, hidden]. */
function convStack(b: GraphBuilder, ctx: ExportContext, prefix: string, xNHWC: string): string {
  const c = ctx.cfg;
  const sizes = convSizes(c);
  let h = b.op("Transpose", [standardise(b, ctx, xNHWC)], { perm: [0, 3, 1, 2] });
  let inC = c.channels;
  c.filters.forEach((f, i) => {
    h = b.op("Relu", [conv(b, ctx, `${prefix}/conv${i}`, h, inC, f, c.strides[i], sizes[i])]);
    inC = f;
  });
  // Back to NHWC so the flatten order is TF.js's reshape order.
  const flat = b.op("Flatten", [b.op("Transpose", [h], { perm: [0, 2, 3, 1] })], { axis: 1 });
  return dense(b, ctx, `${prefix}/dense`, flat, flatSize(c), c.hidden, "relu");
}

function flatSize(c: ModelConfig): number {
  const [h, w] = convSizes(c)[c.filters.length];
  return h * w * c.filters[c.filters.length - 1];
}

/** EquiVAE.g: dense ReLU + linear d_v. */
function g(b: GraphBuilder, ctx: ExportContext, h: string, out: string): string {
  const c = ctx.cfg;
  const hid = dense(b, ctx, `${NETS.g}/hidden`, h, c.hidden, c.hidden, "relu");
  return dense(b, ctx, `${NETS.g}/out`, hid, c.hidden, c.dv, "none", out);
}

const imageShape = (c: ModelConfig, ...lead: string[]) => [...lead, c.height, c.width, c.channels];

export const invariantGraph: GraphDef = {
  name: "invariant",
  file: "invariant.onnx",
  doc: "n = 1 invariant embedding v = g(f(x)); x: NHWC float32 in [0, 1]",
  build(b, ctx) {
    const x = b.input("x", imageShape(ctx.cfg, "N"));
    g(b, ctx, convStack(b, ctx, NETS.f, x), "v");
    b.output("v", ["N", ctx.cfg.dv]);
  },
};

export const invariantSetGraph: GraphDef = {
  name: "invariant_set",
  file: "invariant_set.onnx",
  doc: "set embedding v = g(sum_s mask * f(x_s) / sum_s mask); mask 1 = image present (a row of zeros gives NaN)",
  build(b, ctx) {
    const c = ctx.cfg;
    const x = b.input("x", imageShape(c, "B", "S"));
    const mask = b.input("mask", ["B", "S"]);
    const flatX = b.op("Reshape", [x, b.int64("images_shape", [-1, c.height, c.width, c.channels])]);
    const h = convStack(b, ctx, NETS.f, flatX);
    const bsh = b.op("Concat", [b.op("Shape", [mask]), b.int64("hidden", [c.hidden])], { axis: 0 });
    const h3 = b.op("Reshape", [h, bsh]);
    const m3 = b.op("Unsqueeze", [mask, b.int64("axis2", [2])]);
    const axis1 = b.int64("axis1", [1]);
    const num = b.op("ReduceSum", [b.op("Mul", [h3, m3]), axis1], { keepdims: 0 });
    const den = b.op("ReduceSum", [mask, axis1], { keepdims: 1 });
    g(b, ctx, b.op("Div", [num, den]), "v");
    b.output("v", ["B", c.dv]);
  },
};

export const equivariantGraph: GraphDef = {
  name: "equivariant",
  file: "equivariant.onnx",
  doc: "q(z | x, v): mean and log-variance",
  build(b, ctx) {
    const c = ctx.cfg;
    const H = c.hidden;
    const x = b.input("x", imageShape(c, "N"));
    const v = b.input("v", ["N", c.dv]);
    const hx = convStack(b, ctx, NETS.enc, x);
    const hv = dense(b, ctx, `${NETS.enc}/v`, v, c.dv, H, "relu");
    const h = b.op("Concat", [hx, hv], { axis: 1 });
    for (const head of ["mu", "logvar"]) {
      const hid = dense(b, ctx, `${NETS.enc}/${head}_hidden`, h, 2 * H, H, "relu");
      dense(b, ctx, `${NETS.enc}/${head}_out`, hid, H, c.dz, "none", head);
      b.output(head, ["N", c.dz]);
    }
  },
};

export const decoderGraph: GraphDef = {
  name: "decoder",
  file: "decoder.onnx",
  doc:
    "p(x | v, z) in data space, NHWC: sigmoid of the logits (bernoulli) or the means (gaussian; " +
    "out * std + mean when standardised), clipped to [0, 1]",
  build(b, ctx) {
    const c = ctx.cfg;
    const H = c.hidden;
    const L = c.filters.length;
    const sizes = convSizes(c);
    const v = b.input("v", ["N", c.dv]);
    const z = b.input("z", ["N", c.dz]);
    const a = dense(b, ctx, `${NETS.dec}/v`, v, c.dv, H, "relu");
    const bz = dense(b, ctx, `${NETS.dec}/z`, z, c.dz, H, "relu");
    const h0 = dense(
      b,
      ctx,
      `${NETS.dec}/hidden`,
      b.op("Concat", [a, bz], { axis: 1 }),
      2 * H,
      flatSize(c),
      "relu",
    );
    const [sh, sw] = sizes[L];
    const nhwc = b.op("Reshape", [h0, b.int64("grid_shape", [-1, sh, sw, c.filters[L - 1]])]);
    let h = b.op("Transpose", [nhwc], { perm: [0, 3, 1, 2] });
    for (let i = L - 1; i >= 1; i--) {
      const y = convTranspose(
        b,
        ctx,
        `${NETS.dec}/deconv${i}`,
        h,
        c.filters[i],
        c.filters[i - 1],
        c.strides[i],
        sizes[i + 1],
        sizes[i],
      );
      h = b.op("Relu", [y]);
    }
    const out = conv(b, ctx, `${NETS.dec}/out`, h, c.filters[0], c.channels, c.strides[0], sizes[1]);
    if (c.likelihood === "bernoulli") {
      b.op("Transpose", [b.op("Sigmoid", [out])], { perm: [0, 2, 3, 1] }, "x_mean");
    } else {
      // The scale is not part of the mean; a learned one is read so the export accounts for it.
      if ((c.gaussianScale ?? "learned") === "learned") ctx.w.get(`${NETS.dec}/log_sigma`, [c.channels]);
      let m = b.op("Transpose", [out], { perm: [0, 2, 3, 1] });
      if (c.standardise) {
        const k = stdInitializers(b, ctx);
        m = b.op("Add", [b.op("Mul", [m, k.std]), k.mean]);
      }
      const lo = b.float("clip_min", [], Float32Array.of(0));
      const hi = b.float("clip_max", [], Float32Array.of(1));
      b.op("Clip", [m, lo, hi], {}, "x_mean");
    }
    const [oh, ow] = [Math.ceil(sizes[1][0] / c.strides[0]), Math.ceil(sizes[1][1] / c.strides[0])];
    b.output("x_mean", ["N", oh, ow, c.channels]);
  },
};

export const classifierGraph: GraphDef = {
  name: "classifier",
  file: "classifier.onnx",
  doc: "q(y | x) of a semi-supervised model: class probabilities (softmax); includes v(x); dropout off",
  build(b, ctx) {
    const c = ctx.cfg;
    const [u1, u2] = CLASSIFIER_UNITS;
    const x = b.input("x", imageShape(c, "N"));
    const v = g(b, ctx, convStack(b, ctx, NETS.f, x), "v_inner");
    const h = b.op("Concat", [convStack(b, ctx, NETS.cls, x), v], { axis: 1 });
    const h1 = dense(b, ctx, `${NETS.cls}/h1`, h, c.hidden + c.dv, u1, "relu");
    const h2 = dense(b, ctx, `${NETS.cls}/h2`, h1, u1, u2, "relu");
    const logits = dense(b, ctx, `${NETS.cls}/out`, h2, u2, c.numClasses, "none");
    b.op("Softmax", [logits], { axis: 1 }, "probs");
    b.output("probs", ["N", c.numClasses]);
  },
};

/** Every graph written by exportOnnx for a supervised model, in this order. */
export const GRAPHS: GraphDef[] = [invariantGraph, invariantSetGraph, equivariantGraph, decoderGraph];

/** The graphs of a model: GRAPHS, plus classifier.onnx when the model has q(y | x). */
export function graphsFor(cfg: ModelConfig): GraphDef[] {
  return cfg.classifier ? [...GRAPHS, classifierGraph] : GRAPHS;
}
