import { UserError } from "../util/errors.js";

export const BACKENDS = ["tensorflow", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Checks a --backend value without loading TF.js (so flag errors come before slow work). */
export function checkBackendName(name: string | undefined): BackendName | undefined {
  if (name !== undefined && !(BACKENDS as readonly string[]).includes(name)) {
    throw new UserError(`unknown backend '${name}' (choose one of: ${BACKENDS.join(", ")})`);
  }
  return name as BackendName | undefined;
}
