/**
 * The likelihood and standardisation choices of a training run (`--likelihood`, `--gaussian-scale`,
 * `--standardise`) and their defaults: Gaussian for colour images (SVHN, colour image folders),
 * Bernoulli for grey ones (MNIST, Fashion-MNIST, grey folders); standardisation only with the
 * Gaussian: per pixel for SVHN (the paper), per channel otherwise (see src/model/standardisation.ts).
 */
import type { GaussianScale, LikelihoodName } from "../model/config.js";
import type { EquiVAE } from "../model/equivae.js";
import type { StandardiseMode } from "../checkpoint/index.js";
import { InputError } from "../util/errors.js";

export type StandardiseChoice = StandardiseMode | "off";

export interface LikelihoodOptions {
  /** Default: gaussian when the images have 3 channels, else bernoulli. */
  likelihood?: LikelihoodName;
  /** Gaussian only. Default: "learned". */
  gaussianScale?: GaussianScale;
  /** Default: off for bernoulli; for gaussian, pixel on SVHN, channel otherwise. */
  standardise?: StandardiseChoice;
}

export interface LikelihoodChoice {
  likelihood: LikelihoodName;
  gaussianScale?: GaussianScale;
  standardise: StandardiseChoice;
}

export function defaultLikelihood(channels: number): LikelihoodName {
  return channels === 3 ? "gaussian" : "bernoulli";
}

export function defaultStandardise(likelihood: LikelihoodName, dataset: string): StandardiseChoice {
  if (likelihood !== "gaussian") return "off";
  return dataset === "svhn" ? "pixel" : "channel";
}

export function resolveLikelihood(channels: number, dataset: string, o: LikelihoodOptions): LikelihoodChoice {
  const likelihood = o.likelihood ?? defaultLikelihood(channels);
  if (likelihood !== "bernoulli" && likelihood !== "gaussian") {
    throw new InputError(`unknown likelihood '${String(likelihood)}' (choose bernoulli or gaussian)`);
  }
  if (o.gaussianScale !== undefined && likelihood !== "gaussian") {
    throw new InputError("--gaussian-scale applies only to --likelihood gaussian");
  }
  return {
    likelihood,
    ...(likelihood === "gaussian" ? { gaussianScale: o.gaussianScale ?? "learned" } : {}),
    standardise: o.standardise ?? defaultStandardise(likelihood, dataset),
  };
}

/** --resume: explicitly given choices must match the checkpoint's model. */
export function checkResumeLikelihood(model: EquiVAE, o: LikelihoodOptions, out: string): void {
  const cfg = model.config;
  const was: Record<string, unknown> = {
    likelihood: cfg.likelihood,
    gaussianScale: cfg.likelihood === "gaussian" ? (cfg.gaussianScale ?? "learned") : undefined,
    standardise: cfg.standardise ? (model.standardisation?.mode ?? "pixel") : "off",
  };
  for (const k of ["likelihood", "gaussianScale", "standardise"] as const) {
    if (o[k] !== undefined && o[k] !== was[k]) {
      throw new InputError(
        `--resume: ${k} was ${JSON.stringify(was[k])} in ${out} but is ${JSON.stringify(o[k])} now; ` +
          `resume with the original settings (only --epochs may change)`,
      );
    }
  }
}
