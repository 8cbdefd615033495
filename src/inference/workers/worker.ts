/**
 * An inference worker thread (run by piscina): it opens its own ONNX Runtime sessions over the
 * checkpoint (one intra-op thread, no spinning) and runs the batches it is sent. It loads no image
 * decoder (decode-worker.ts does that). Failures come back as data (Reply), since an Error loses
 * its class crossing threads.
 */
import { threadId, workerData } from "node:worker_threads";
import { errorMessage } from "../../util/errors.js";
import { OnnxEngine } from "../onnx-engine.js";
import { engineRunner } from "../queue.js";
import type { InferenceTask, Reply, WorkerConfig } from "./protocol.js";

const config = workerData as WorkerConfig;

let loadError = "no engine";
const engine = await OnnxEngine.load(config.modelDir, {
  threads: config.threads,
  spinning: false,
  device: config.device,
}).catch((e: unknown) => {
  loadError = errorMessage(e);
  return undefined;
});
const runBatch = engine ? engineRunner(engine) : undefined;

async function handle(task: InferenceTask): Promise<Reply> {
  if (!engine || !runBatch) return { ok: false, message: loadError };
  switch (task.kind) {
    case "hello":
      return { ok: true, threadId };
    case "batch":
      return { ok: true, outputs: await runBatch(task.op, task.inputs, task.rows) };
    case "set":
      return { ok: true, outputs: [await engine.embedSet(task.x, task.sizes)] };
  }
}

export default async function run(task: InferenceTask): Promise<Reply> {
  try {
    return await handle(task);
  } catch (e) {
    return { ok: false, message: errorMessage(e) };
  }
}
