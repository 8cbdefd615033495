import { existsSync, promises as fsp } from "node:fs";
import { join, resolve } from "node:path";
import { InputError } from "../util/errors.js";
import { recoverDir, sha256File, writeFileAtomic } from "../util/fsx.js";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  FILES,
  type ExportManifest,
  type Manifest,
  type OnnxSection,
  type RecordedEvaluation,
  type ZActivity,
} from "./format.js";
import { validateConfig } from "./model-config.js";

/** Reads and checks manifest.json and the sha256 of every file it lists. */
export async function readManifest(dir: string, verify = true): Promise<Manifest> {
  dir = resolve(dir);
  await recoverDir(dir);
  const mpath = join(dir, FILES.manifest);
  if (!existsSync(dir)) throw new InputError(`checkpoint directory not found: ${dir}`);
  if (!existsSync(mpath)) throw new InputError(`not a checkpoint: ${mpath} is missing`);
  let m: Manifest;
  try {
    m = JSON.parse(await fsp.readFile(mpath, "utf8")) as Manifest;
  } catch (e) {
    throw new InputError(`${mpath}: not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== CHECKPOINT_FORMAT) throw new InputError(`${mpath}: not an EquiVAE checkpoint manifest`);
  if (m.formatVersion > CHECKPOINT_VERSION) {
    throw new InputError(
      `${mpath}: format version ${m.formatVersion} is newer than this program supports (${CHECKPOINT_VERSION})`,
    );
  }
  try {
    validateConfig(m.model);
  } catch (e) {
    throw new InputError(`${mpath}: invalid model config: ${(e as Error).message}`);
  }
  if (verify) {
    for (const [name, f] of Object.entries(m.files ?? {})) {
      const p = join(dir, name);
      if (!existsSync(p)) throw new InputError(`checkpoint file missing: ${p}`);
      const sha = await sha256File(p);
      if (sha !== f.sha256)
        throw new InputError(`checkpoint file corrupt: ${p} does not match its sha256 in manifest.json`);
    }
  }
  return m;
}

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
 * Records a held-out evaluation in manifest.json's `evaluation` (replacing a previous one), and
 * the z activity when given (`zActivity`, replacing the one training wrote), atomically like the
 * ONNX record. Nothing else in the manifest changes (it is not among the files it lists).
 */
export async function recordEvaluation(
  dir: string,
  evaluation: RecordedEvaluation,
  zActivity?: ZActivity,
): Promise<void> {
  await updateManifest(dir, (m) => {
    m.evaluation = evaluation;
    if (zActivity) m.zActivity = zActivity;
  });
}

/** Reads manifest.json, applies `change`, and replaces the file atomically (temp file, fsync, rename). */
async function updateManifest(dir: string, change: (m: ExportManifest) => void): Promise<ExportManifest> {
  const path = join(dir, FILES.manifest);
  let m: ExportManifest;
  try {
    m = JSON.parse(await fsp.readFile(path, "utf8")) as ExportManifest;
  } catch (e) {
    throw new InputError(`${path}: cannot update (${(e as Error).message})`);
  }
  change(m);
  try {
    await writeFileAtomic(path, JSON.stringify(m, null, 2) + "\n");
  } catch (e) {
    throw new InputError(`${path}: cannot update (${(e as Error).message}); the manifest was left as it was`);
  }
  return m;
}
