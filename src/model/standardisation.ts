/**
 * Standardisation of the model's inputs (the spec: "SVHN standardised per pixel over the data set"):
 * a mean and a standard deviation for every pixel position and channel, from the training split's
 * values (pixels / 255, so in [0, 1]). The model applies (x - mean) / std at the input of its conv
 * stacks, so every consumer (trainer, TF.js engine, ONNX graphs, server, batch embedder) agrees by
 * construction; stored in the checkpoint's standardisation.json.
 *
 * Two ways to compute them, stored the same way (per pixel and channel):
 * - "pixel": each pixel position and channel has its own statistics (the paper's SVHN setting);
 * - "channel": one mean and std per channel, pooled over all positions (the same value at every
 *   position). Per-pixel statistics also reweight the Gaussian likelihood position by position
 *   (a pixel that varies little counts more): on data whose objects are not aligned, that weights
 *   down exactly the pixels where classes differ (the edges of the objects), and the invariant
 *   embedding can collapse. Per-channel statistics do not reweight.
 */
import { InputError } from "../util/errors.js";
import type { StandardisationFile, StandardiseMode } from "../checkpoint/standardisation.js";
import type { ImageSet } from "../data/dataset.js";

/**
 * std is floored at max(STD_FLOOR_MIN, STD_FLOOR_FRACTION x the mean std over all pixels): a pixel
 * that (almost) never changes in training (a constant border) would otherwise turn a small change
 * at test time into a huge standardised input. 1/255 is one grey level.
 */
export const STD_FLOOR_MIN = 1 / 255;
export const STD_FLOOR_FRACTION = 0.1;

/**
 * Mean and (population) std per pixel and channel over the rows of `s` (pixels / 255); with
 * mode "channel" pooled over positions (and repeated at every position).
 */
export function computeStandardisation(s: ImageSet, mode: StandardiseMode = "pixel"): StandardisationFile {
  const d = s.height * s.width * s.channels;
  if (s.n < 1) throw new InputError("standardisation: the training split is empty");
  const sum = new Float64Array(d);
  const sq = new Float64Array(d);
  for (let i = 0; i < s.n; i++) {
    const row = s.pixels.subarray(i * d, (i + 1) * d);
    for (let k = 0; k < d; k++) {
      const v = row[k];
      sum[k] += v;
      sq[k] += v * v;
    }
  }
  if (mode === "channel") {
    // Pool each channel's sums over the positions, then put the pooled sums back at every position.
    const C = s.channels;
    const cs = new Float64Array(C);
    const cq = new Float64Array(C);
    for (let k = 0; k < d; k++) {
      cs[k % C] += sum[k];
      cq[k % C] += sq[k];
    }
    const per = d / C;
    for (let k = 0; k < d; k++) {
      sum[k] = cs[k % C] / per;
      sq[k] = cq[k % C] / per;
    }
  }
  const mean = new Array<number>(d);
  const std = new Array<number>(d);
  let stdSum = 0;
  for (let k = 0; k < d; k++) {
    const m = sum[k] / s.n;
    const v = Math.max(0, sq[k] / s.n - m * m);
    mean[k] = Math.fround(m / 255);
    std[k] = Math.sqrt(v) / 255;
    stdSum += std[k];
  }
  const floor = Math.fround(Math.max(STD_FLOOR_MIN, (STD_FLOOR_FRACTION * stdSum) / d));
  for (let k = 0; k < d; k++) std[k] = Math.fround(Math.max(floor, std[k]));
  return { shape: [s.height, s.width, s.channels], mode, count: s.n, stdFloor: floor, mean, std };
}

/** The manifest's dataset.preprocessing for a model. */
export function preprocessingText(mode: StandardiseMode | "off"): string {
  if (mode === "off") return "pixels / 255";
  const how = mode === "pixel" ? "per pixel and channel" : "per channel (pooled over positions)";
  return `pixels / 255, then (x - mean) / std ${how} inside the model (standardisation.json, training split)`;
}
