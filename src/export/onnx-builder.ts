import onnxProto from "onnx-proto";
import { endianness } from "node:os";
import type { TensorSpec } from "../checkpoint/index.js";

const { onnx } = onnxProto;

/** Opset and IR version of every exported graph (both supported by onnxruntime 1.17+, incl. 1.30). */
export const OPSET = 13;
export const IR_VERSION = 8;

type Attr = number | number[];

const littleEndian = endianness() === "LE";

/**
 * A small ONNX graph writer over onnx-proto: inputs, outputs, float32/int64 initializers and
 * nodes with integer attributes (all that the EquiVAE graphs need). Names are generated
 * unless given, so builders read like the TF.js code they mirror.
 */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: TensorSpec[] = [];
  private readonly outputs: TensorSpec[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    let n = `${hint}_${this.counter++}`;
    while (this.used.has(n)) n = `${hint}_${this.counter++}`;
    this.used.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`onnx graph ${this.name}: duplicate tensor name ${name}`);
    this.used.add(name);
    return name;
  }

  input(name: string, shape: Array<number | string>): string {
    this.inputs.push({ name: this.claim(name), shape, dtype: "float32" });
    return name;
  }

  /** Declares `tensor` (already produced by a node with that exact name) as a graph output. */
  output(tensor: string, shape: Array<number | string>): void {
    this.outputs.push({ name: tensor, shape, dtype: "float32" });
  }

  /** A float32 initializer (a weight), stored as raw little-endian bytes. */
  float(name: string, dims: number[], data: Float32Array): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new Error(`initializer ${name}: ${data.length} values for [${dims}]`);
    const t: onnxProto.onnx.ITensorProto = {
      name: this.claim(name),
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
    };
    if (littleEndian) t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else t.floatData = Array.from(data);
    this.initializers.push(t);
    return name;
  }

  /** A 1-D int64 constant (shapes, axes). */
  int64(hint: string, values: number[]): string {
    const name = this.fresh(hint);
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: onnx.TensorProto.DataType.INT64,
      int64Data: values,
    });
    return name;
  }

  /** Adds a node with one output; returns the output's name (`out` if given). */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const y = out === undefined ? this.fresh(opType.toLowerCase()) : this.claim(out);
    const attribute: onnxProto.onnx.IAttributeProto[] = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
        : { name, type: onnx.AttributeProto.AttributeType.INT, i: v },
    );
    this.nodes.push({ opType, input: inputs, output: [y], name: y, attribute });
    return y;
  }

  get signature(): { inputs: TensorSpec[]; outputs: TensorSpec[] } {
    return { inputs: [...this.inputs], outputs: [...this.outputs] };
  }

  /** Serialises the model (IR_VERSION, default-domain OPSET). */
  encode(meta: { producer: string; version: string; doc?: string }): Uint8Array {
    const valueInfo = (s: TensorSpec): onnxProto.onnx.IValueInfoProto => ({
      name: s.name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: {
            dim: s.shape.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })),
          },
        },
      },
    });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: OPSET }],
      producerName: meta.producer,
      producerVersion: meta.version,
      docString: meta.doc ?? "",
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** Permutes a dense row-major tensor (e.g. HWIO -> OIHW with perm [3, 2, 0, 1]). */
export function permute(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const r = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array<number>(r);
  let s = 1;
  for (let i = r - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const stridesForOut = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < r; d++) src += idx[d] * stridesForOut[d];
    out[o] = data[src];
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * TF's 'same' padding along one axis of a forward convolution with input size `inSize`:
 * out = ceil(in / stride), total = max((out - 1) * stride + k - in, 0), before = floor(total / 2).
 * The extra pixel of an odd total goes after (bottom/right), as in TF and TF.js.
 */
export function samePads(inSize: number, stride: number, k: number): { before: number; after: number } {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + k - inSize, 0);
  const before = Math.floor(total / 2);
  return { before, after: total - before };
}
