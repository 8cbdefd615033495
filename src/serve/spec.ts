import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { OPENAPI_PATH } from "./config.js";
import { ApiError } from "./errors.js";

export interface OpenApiDoc {
  info: { title: string; version: string; summary?: string; description?: string };
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, any>; responses?: Record<string, any> };
  "x-problem-types": Array<{ kind: string; status: number }>;
  [k: string]: unknown;
}

export interface Spec {
  text: string;
  doc: OpenApiDoc;
  /** Validates a JSON request body of an operation against the spec's schema (throws validation-failed). */
  validate(operationId: string, body: unknown): void;
  /** The (dereferenced one level) JSON request-body schema of an operation. */
  requestSchema(operationId: string): any;
}

const SPEC_ID = "https://equivae.local/openapi.json";

function formatErrors(errs: ErrorObject[]): Array<{ path: string; message: string }> {
  return errs.map((e) => ({
    path: e.instancePath || "/",
    message:
      e.keyword === "additionalProperties"
        ? `unknown field '${(e.params as { additionalProperty: string }).additionalProperty}'`
        : (e.message ?? e.keyword),
  }));
}

/** Loads openapi.yaml and compiles its JSON request-body schemas with ajv (JSON Schema 2020-12). */
export function loadSpec(path = OPENAPI_PATH): Spec {
  const text = readFileSync(path, "utf8");
  const doc = parse(text) as OpenApiDoc;
  const ajv = new Ajv2020({ allErrors: true, strict: false, useDefaults: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema({ $id: SPEC_ID, components: doc.components });
  const ops = new Map<string, { fn: ValidateFunction; schema: any }>();
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item)) {
      const schema = op?.requestBody?.content?.["application/json"]?.schema;
      if (!op?.operationId || !schema) continue;
      const fn = ajv.compile({ $ref: `${SPEC_ID}${schema.$ref ?? ""}` });
      const name = String(schema.$ref ?? "").replace("#/components/schemas/", "");
      ops.set(op.operationId, { fn, schema: doc.components.schemas[name] ?? schema });
    }
  }
  return {
    text,
    doc,
    validate(operationId, body) {
      const v = ops.get(operationId);
      if (!v) throw new Error(`no request schema for ${operationId}`);
      if (!v.fn(body)) {
        const errors = formatErrors(v.fn.errors ?? []);
        throw new ApiError("validation-failed", errors.map((e) => `${e.path}: ${e.message}`).join("; "), {
          errors,
        });
      }
    },
    requestSchema(operationId) {
      return ops.get(operationId)?.schema;
    },
  };
}

/** The schema a $ref points at (components/schemas only). */
export function deref(doc: OpenApiDoc, s: any): any {
  if (s && typeof s.$ref === "string")
    return doc.components.schemas[s.$ref.replace("#/components/schemas/", "")];
  return s;
}
