/**
 * Kernels for the `tensorflow` backend (tfjs-node) that TF.js composes from several TensorFlow ops
 * where TensorFlow has one. Each TensorFlow op costs ~10-20 us of dispatch on tfjs-node whatever
 * its size, and each elementwise op is a pass over memory, so one op instead of two matters in a
 * training step of ~560 ops.
 */
import * as tf from "@tensorflow/tfjs";
import { RELU_GRAD } from "./kernel-names.js";

const BACKEND = "tensorflow";

/** The parts of tfjs-node's NodeJSKernelBackend used here (it runs any TensorFlow op by name). */
interface NodeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.TensorInfo;
}

/**
 * A relu's gradient in one op: TensorFlow's ReluGrad(gradients, features) where TF.js runs
 * dy * step(x) (tfjs-node's Step is 5 ops) or, in this project's biasRelu, dy * sign(y).
 */
const reluGradConfig: tf.KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: BACKEND,
  kernelFunc: ({ inputs, backend }) => {
    const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
    const b = backend as unknown as NodeBackend;
    const T = { name: "T", type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT };
    return b.executeSingleOutput("ReluGrad", [T], [dy, y]);
  },
};

/** Registers the kernels above for the tensorflow backend. Idempotent. */
export function registerTensorflowTrainingKernels(): void {
  if (tf.getKernel(RELU_GRAD, BACKEND) == null) tf.registerKernel(reluGradConfig);
}
