/** `equivae export <checkpoint>`: exportOnnx (src/export/onnx.ts), then a check that ONNX Runtime runs the graphs. */
import { join, resolve } from "node:path";
import type { CommandSpec, FlagSpec } from "../util/flags.js";

type TensorList = Array<{ name: string; shape: Array<number | string> }>;

function signature(l: TensorList): string {
  return l.map((t) => `${t.name} [${t.shape.join(",")}]`).join(", ");
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

async function run({ positionals }: { positionals: string[] }): Promise<void> {
  const dir = resolve(positionals[0]);
  const { exportOnnx } = await import("../export/onnx.js");
  const r = await exportOnnx(dir);
  for (const f of r.files) {
    const g = r.manifest.onnx!.graphs[f.graph];
    console.log(`wrote ${f.path} (${kib(f.bytes)}): ${signature(g.inputs)} -> ${signature(g.outputs)}`);
  }
  console.log(`updated ${join(dir, "manifest.json")} (opset ${r.manifest.onnx!.opset}, sha256 of each file)`);
  const { loadEngine } = await import("../inference/index.js");
  const engine = await loadEngine(dir, { engine: "onnx", threads: 1 });
  await engine.dispose();
  console.log("checked: every graph loads and runs in ONNX Runtime");
}

const EXPORT_FLAGS = [] as const satisfies readonly FlagSpec[];

export const command: CommandSpec<typeof EXPORT_FLAGS> = {
  name: "export",
  usage: "equivae export <checkpoint>",
  intro:
    "  Writes invariant.onnx, invariant_set.onnx, equivariant.onnx and decoder.onnx (and classifier.onnx\n" +
    "  for a semi-supervised checkpoint; opset 13, NHWC float32 images in [0, 1], dynamic batch) from the\n" +
    "  checkpoint's weights, records their sha256 and signatures in its manifest.json, and checks that\n" +
    "  ONNX Runtime loads them. Every checkpoint that train writes already carries its ONNX graphs: this\n" +
    "  is for an older checkpoint without them, or one whose .onnx files were damaged.",
  flags: EXPORT_FLAGS,
  positionals: 1,
  run,
};
