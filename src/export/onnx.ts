import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  FILES,
  fromFile,
  readManifest,
  readStandardisation,
  recordOnnxExport,
  type DerivedFiles,
  type ExportManifest,
  type ModelSnapshot,
  type OnnxGraphInfo,
  type OnnxSection,
} from "../checkpoint/index.js";
import { InputError } from "../util/errors.js";
import { sha256File, writeFileAtomic } from "../util/fsx.js";
import { graphsFor, type GraphDef } from "./graphs.js";
import { GraphBuilder, IR_VERSION, OPSET } from "./onnx-builder.js";
import { WeightStore, readWeightValues } from "./weights.js";

export interface ExportedFile {
  graph: string;
  file: string;
  path: string;
  bytes: number;
  sha256: string;
}

export interface ExportResult {
  dir: string;
  files: ExportedFile[];
  manifest: ExportManifest;
}

function producerVersion(): string {
  try {
    const pkg = new URL("../../../package.json", import.meta.url);
    return (JSON.parse(readFileSync(pkg, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

/**
 * The ONNX graphs (see graphs.ts) of a model's weights, with the manifest's `onnx` section:
 * `train` calls this on the weights in memory for every checkpoint it writes (the command layer
 * passes it as the checkpoint's DeriveFiles hook), `export` on a checkpoint read from disk.
 */
export async function onnxFiles(
  s: ModelSnapshot,
  only?: GraphDef[],
  label = "the model's weights",
): Promise<DerivedFiles> {
  const cfg = s.config;
  const w = WeightStore.of(label, s.weights);
  const std = s.standardisation
    ? fromFile(s.standardisation, [cfg.height, cfg.width, cfg.channels], "standardisation.json")
    : undefined;
  const ctx = { cfg, w, ...(std ? { std } : {}) };
  const version = producerVersion();
  const files: Record<string, Uint8Array> = {};
  const graphs: Record<string, OnnxGraphInfo> = {};
  for (const def of only ?? graphsFor(cfg)) {
    const b = new GraphBuilder(def.name);
    def.build(b, ctx);
    files[def.file] = b.encode({ producer: "equivae-serving", version, doc: def.doc });
    graphs[def.name] = {
      file: def.file,
      doc: def.doc,
      inputs: b.signature.inputs,
      outputs: b.signature.outputs,
    };
  }
  if (only === undefined) {
    const unused = w.unused();
    if (unused.length)
      throw new Error(`ONNX export does not use the weights ${unused.slice(0, 4).join(", ")}`);
  }
  const onnx: OnnxSection = {
    opset: OPSET,
    irVersion: IR_VERSION,
    producer: `equivae-serving ${version}`,
    exportedAt: new Date().toISOString(),
    weightsSha256: s.weightsSha256,
    graphs,
  };
  return { files, onnx };
}

/**
 * Writes a checkpoint's ONNX graphs beside its TF.js weights, from those weights, and records them
 * in manifest.json (sha256, size, and the `onnx` section). Every file's sha256 is verified first,
 * except those of a previous export (they are rewritten, so a damaged .onnx file is repaired by
 * exporting again).
 */
export async function exportOnnx(checkpointDir: string, only?: GraphDef[]): Promise<ExportResult> {
  const dir = resolve(checkpointDir);
  const before = (await readManifest(dir, false)) as ExportManifest;
  await verifyFiles(dir, before);
  const snapshot: ModelSnapshot = {
    config: before.model,
    weights: await readWeightValues(dir),
    ...(before.model.standardise ? { standardisation: await readStandardisation(dir, before) } : {}),
    weightsSha256: before.files[FILES.weights]?.sha256 ?? "",
  };
  const derived = await onnxFiles(snapshot, only, join(dir, FILES.weights));
  const files: ExportedFile[] = [];
  for (const [graph, info] of Object.entries(derived.onnx!.graphs)) {
    const bytes = derived.files[info.file];
    const path = join(dir, info.file);
    await writeFileAtomic(path, bytes);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    files.push({ graph, file: info.file, path, bytes: bytes.byteLength, sha256 });
  }
  const manifest = await recordOnnxExport(
    dir,
    Object.fromEntries(files.map((f) => [f.file, { sha256: f.sha256, bytes: f.bytes }])),
    derived.onnx!,
  );
  return { dir, files, manifest };
}

/** Every file the manifest lists must match its sha256, except a previous export's graphs. */
async function verifyFiles(dir: string, m: ExportManifest): Promise<void> {
  const previous = new Set(Object.values(m.onnx?.graphs ?? {}).map((g) => g.file));
  for (const [name, f] of Object.entries(m.files ?? {})) {
    if (previous.has(name)) continue;
    const p = join(dir, name);
    if (!existsSync(p)) throw new InputError(`checkpoint file missing: ${p}`);
    if ((await sha256File(p)) !== f.sha256) {
      throw new InputError(`checkpoint file corrupt: ${p} does not match its sha256 in manifest.json`);
    }
  }
}
