import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { InputError } from "../util/errors.js";
import { FILES, type WeightValue } from "../checkpoint/index.js";

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

/**
 * A model's weights by name (read from a checkpoint's weights.json + weights.bin without a TF.js
 * backend, or handed over in memory by the trainer). `get` checks the shape each graph builder expects, so a builder that drifts
 * from the model's architecture fails loudly; `unused` lists weights no builder asked for.
 */
export class WeightStore {
  private readonly used = new Set<string>();

  private constructor(
    private readonly path: string,
    private readonly values: Map<string, WeightValue>,
  ) {}

  /** A store over weights already in memory; `label` names them in errors. */
  static of(label: string, values: Map<string, WeightValue>): WeightStore {
    return new WeightStore(label, values);
  }

  get(name: string, shape: number[]): Float32Array {
    const w = this.values.get(name);
    if (!w) throw new InputError(`${this.path}: no weight ${name}`);
    if (w.shape.join(",") !== shape.join(",")) {
      throw new InputError(`${this.path}: ${name} has shape [${w.shape}] but the export expects [${shape}]`);
    }
    this.used.add(name);
    return w.data;
  }

  unused(): string[] {
    return [...this.values.keys()].filter((k) => !this.used.has(k));
  }
}

/** A checkpoint's weights.json + weights.bin as float32 values, without a TF.js backend. */
export async function readWeightValues(dir: string): Promise<Map<string, WeightValue>> {
  const specPath = join(dir, FILES.weightsSpec);
  const binPath = join(dir, FILES.weights);
  let specs: WeightSpec[];
  try {
    const j = JSON.parse(await fsp.readFile(specPath, "utf8")) as Array<{ weights: WeightSpec[] }>;
    specs = j[0].weights;
    if (!Array.isArray(specs)) throw new Error("no weights list");
  } catch (e) {
    throw new InputError(`${specPath}: unreadable weight spec (${(e as Error).message})`);
  }
  const buf = await fsp.readFile(binPath);
  const values = new Map<string, WeightValue>();
  let offset = 0;
  for (const s of specs) {
    if (s.dtype !== "float32") throw new InputError(`${specPath}: ${s.name} is ${s.dtype}, not float32`);
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > buf.byteLength) {
      throw new InputError(`${binPath}: too short for its spec (${buf.byteLength} bytes)`);
    }
    // Copy: the Buffer may share a pool, and Float32Array needs 4-byte alignment.
    const data = new Float32Array(size);
    new Uint8Array(data.buffer).set(buf.subarray(offset, offset + size * 4));
    values.set(s.name, { shape: s.shape, data });
    offset += size * 4;
  }
  if (offset !== buf.byteLength) {
    throw new InputError(`${binPath}: holds ${buf.byteLength} bytes but its spec describes ${offset}`);
  }
  return values;
}
