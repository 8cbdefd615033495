import type { ModelConfig } from "../model/config.js";
import { UserError } from "../util/errors.js";

/**
 * Checks a model config (a manifest's `model`, or one about to be built). Here rather than in
 * src/model so that reading a manifest needs no TF.js; src/model/config.ts holds only types and
 * plain functions, and is imported here for its types alone.
 */
export function validateConfig(c: ModelConfig): void {
  const pos = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${what} must be a positive integer (got ${v})`);
  };
  pos(c.dv, "dv");
  pos(c.dz, "dz");
  pos(c.hidden, "hidden");
  pos(c.numClasses, "number of classes");
  if (c.numClasses < 2) throw new UserError(`need at least 2 classes (got ${c.numClasses})`);
  if (c.filters.length !== c.strides.length) {
    throw new UserError(
      `--filters needs ${c.strides.length} values (one per conv layer), got ${c.filters.length}`,
    );
  }
  c.filters.forEach((f) => pos(f, "each filter count"));
  if (c.likelihood !== "bernoulli" && c.likelihood !== "gaussian") {
    throw new UserError(`unknown likelihood '${String(c.likelihood)}' (bernoulli or gaussian)`);
  }
  if (c.gaussianScale !== undefined) {
    if (c.likelihood !== "gaussian")
      throw new UserError("a Gaussian scale is set but the likelihood is Bernoulli");
    const s = c.gaussianScale;
    if (s !== "learned" && !(typeof s === "number" && Number.isFinite(s) && s > 0)) {
      throw new UserError(`the Gaussian scale must be 'learned' or a positive number (got '${String(s)}')`);
    }
  }
}
