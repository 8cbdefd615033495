import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  FILES,
  fromFile,
  readManifest,
  readStandardisation,
  recordOnnxExport,
  type ExportManifest,
  type OnnxGraphInfo,
} from "../checkpoint/index.js";
import { InputError } from "../util/errors.js";
import { sha256File, writeFileAtomic } from "../util/fsx.js";
import { graphsFor, type GraphDef } from "./graphs.js";
import { GraphBuilder, IR_VERSION, OPSET } from "./onnx-builder.js";
import { WeightStore } from "./weights.js";

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
 * Writes the checkpoint's ONNX graphs (see graphs.ts) beside its TF.js weights, from those
 * weights, and records them in manifest.json (sha256, size, and the `onnx` section). Every
 * file's sha256 is verified first, except those of a previous export (they are rewritten, so a
 * damaged .onnx file is repaired by exporting again).
 */
export async function exportOnnx(checkpointDir: string, only?: GraphDef[]): Promise<ExportResult> {
  const dir = resolve(checkpointDir);
  const before = (await readManifest(dir, false)) as ExportManifest;
  const previous = new Set(Object.values(before.onnx?.graphs ?? {}).map((g) => g.file));
  for (const [name, f] of Object.entries(before.files ?? {})) {
    if (previous.has(name)) continue;
    const p = join(dir, name);
    if (!existsSync(p)) throw new InputError(`checkpoint file missing: ${p}`);
    if ((await sha256File(p)) !== f.sha256) {
      throw new InputError(`checkpoint file corrupt: ${p} does not match its sha256 in manifest.json`);
    }
  }
  const w = await WeightStore.read(dir);
  const std = before.model.standardise
    ? fromFile(
        await readStandardisation(dir, before),
        [before.model.height, before.model.width, before.model.channels],
        "standardisation.json",
      )
    : undefined;
  const ctx = { cfg: before.model, w, ...(std ? { std } : {}) };
  const graphs = only ?? graphsFor(before.model);
  const version = producerVersion();
  const built = graphs.map((def) => {
    const b = new GraphBuilder(def.name);
    def.build(b, ctx);
    return { def, bytes: b.encode({ producer: "equivae-serving", version, doc: def.doc }), sig: b.signature };
  });
  if (only === undefined) {
    const unused = w.unused();
    if (unused.length)
      throw new Error(`ONNX export does not use the weights ${unused.slice(0, 4).join(", ")}`);
  }
  const files: ExportedFile[] = [];
  const graphInfo: Record<string, OnnxGraphInfo> = {};
  for (const { def, bytes, sig } of built) {
    const path = join(dir, def.file);
    await writeFileAtomic(path, bytes);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    files.push({ graph: def.name, file: def.file, path, bytes: bytes.byteLength, sha256 });
    graphInfo[def.name] = { file: def.file, doc: def.doc, inputs: sig.inputs, outputs: sig.outputs };
  }
  const manifest = await recordOnnxExport(
    dir,
    Object.fromEntries(files.map((f) => [f.file, { sha256: f.sha256, bytes: f.bytes }])),
    {
      opset: OPSET,
      irVersion: IR_VERSION,
      producer: `equivae-serving ${version}`,
      exportedAt: new Date().toISOString(),
      weightsSha256: before.files[FILES.weights]?.sha256 ?? "",
      graphs: graphInfo,
    },
  );
  return { dir, files, manifest };
}
