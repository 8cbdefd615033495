import { InputError } from "../util/errors.js";

/** The TF.js backends (tf.setBackend names). */
export const BACKENDS = ["tensorflow", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKENDS)[number];

/**
 * What --backend accepts: a TF.js backend, or a native TensorFlow package to require:
 * tensorflow takes @tensorflow/tfjs-node-gpu when it is installed, else @tensorflow/tfjs-node;
 * tensorflow-gpu needs tfjs-node-gpu and a GPU; tensorflow-cpu takes tfjs-node only.
 */
export const BACKEND_CHOICES = ["tensorflow", "tensorflow-gpu", "tensorflow-cpu", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Checks a --backend value without loading TF.js (so flag errors come before slow work). */
export function checkBackendName(name: string | undefined): BackendChoice | undefined {
  if (name !== undefined && !(BACKEND_CHOICES as readonly string[]).includes(name)) {
    throw new InputError(`unknown backend '${name}' (choose one of: ${BACKEND_CHOICES.join(", ")})`);
  }
  return name as BackendChoice | undefined;
}
