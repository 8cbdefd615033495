/** The messages between the serving thread and its worker threads (structured-clone data only). */
import type { DecodeRequest, DecodedBatch, ImagingFailure } from "../../imaging/batch.js";
import type { Device } from "../device.js";

export interface WorkerConfig {
  /** Checkpoint with ONNX graphs; every inference worker opens its own ONNX Runtime sessions over it. */
  modelDir: string;
  /** ONNX Runtime intra-op threads per worker (1: never spin-waits against the other workers). */
  threads: number;
  /** cpu, or cuda: ONNX Runtime's CUDA execution provider. */
  device: Device;
}

export type InferenceTask =
  | { kind: "hello" }
  | { kind: "batch"; op: string; inputs: Float32Array[]; rows: number }
  | { kind: "set"; x: Float32Array; sizes: number[] };

export interface DecodeTask {
  kind: "decode";
  request: DecodeRequest;
}

export type Reply =
  | { ok: true; outputs?: Float32Array[]; decoded?: DecodedBatch; threadId?: number }
  | { ok: false; imaging?: ImagingFailure; message: string };
