import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { FILES, type Manifest, type RecordedEvaluation } from "../train/checkpoint.js";
import { UserError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fsx.js";
import type { TensorSpec } from "./onnx-builder.js";

export interface OnnxGraphInfo {
  file: string;
  doc: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** The manifest's `onnx` section, written by exportOnnx. */
export interface OnnxSection {
  opset: number;
  irVersion: number;
  producer: string;
  exportedAt: string;
  /** sha256 of the weights.bin the graphs were made from (stale exports are refused at load). */
  weightsSha256: string;
  /** Images are NHWC float32 in [0, 1]; dimensions given as strings are dynamic. */
  graphs: Record<string, OnnxGraphInfo>;
}

/** A checkpoint manifest that may carry ONNX graphs. */
export type ExportManifest = Manifest & { onnx?: OnnxSection };

/**
 * Records ONNX files in manifest.json: their sha256 and size in `files` (entries of a previous
 * export are replaced) and the `onnx` section. The manifest is replaced atomically (temp file,
 * fsync, rename), so readers see the old or the new manifest, never a mix.
 */
export async function recordOnnxExport(
  dir: string,
  files: Record<string, { sha256: string; bytes: number }>,
  onnx: OnnxSection,
): Promise<ExportManifest> {
  return updateManifest(dir, (m) => {
    const previous = new Set(Object.values(m.onnx?.graphs ?? {}).map((g) => g.file));
    const kept = Object.entries(m.files ?? {}).filter(([name]) => !previous.has(name) && !(name in files));
    m.files = Object.fromEntries([...kept, ...Object.entries(files)].sort(([a], [b]) => a.localeCompare(b)));
    m.onnx = onnx;
  });
}

/**
 * Records a held-out evaluation in manifest.json's `evaluation` (replacing a previous one),
 * atomically like the ONNX record. Nothing else in the manifest changes.
 */
export async function recordEvaluation(dir: string, evaluation: RecordedEvaluation): Promise<void> {
  await updateManifest(dir, (m) => {
    m.evaluation = evaluation;
  });
}

/** Reads manifest.json, applies `change`, and replaces the file atomically (temp file, fsync, rename). */
async function updateManifest(dir: string, change: (m: ExportManifest) => void): Promise<ExportManifest> {
  const path = join(dir, FILES.manifest);
  let m: ExportManifest;
  try {
    m = JSON.parse(await fsp.readFile(path, "utf8")) as ExportManifest;
  } catch (e) {
    throw new UserError(`${path}: cannot update (${(e as Error).message})`);
  }
  change(m);
  try {
    await writeFileAtomic(path, JSON.stringify(m, null, 2) + "\n");
  } catch (e) {
    throw new UserError(`${path}: cannot update (${(e as Error).message}); the manifest was left as it was`);
  }
  return m;
}
