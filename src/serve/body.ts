/**
 * Reading and parsing a request body before any work is admitted: the body is read in full under a
 * byte limit that holds for every transfer encoding (Content-Length, chunked) and after
 * decompression, and under a time limit (a slow upload gets 408 and holds no concurrency slot).
 * Then JSON (numbers too large for a float64 are refused, not turned into Infinity) or multipart
 * (busboy over the bytes already read; files only in the field `image`).
 */
import type { IncomingMessage } from "node:http";
import type { Readable, Transform } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import busboy from "busboy";
import { ApiError } from "./errors.js";

export interface UploadedFile {
  bytes: Buffer;
  filename: string;
}

export interface ParsedBody {
  kind: "json" | "multipart";
  /** The JSON value, or the multipart text fields (raw strings, coerced later by the schema). */
  value: unknown;
  files: UploadedFile[];
  /** Bytes received (before decompression). */
  bytes: number;
}

export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  /** Files per multipart body. */
  maxImages: number;
}

/** Text fields a multipart body may hold (more is a malformed request). */
export const MAX_MULTIPART_FIELDS = 64;

const ENCODINGS = ["identity", "gzip", "x-gzip", "deflate", "br"] as const;

/** The body's decompressor, or an error for encodings this server does not speak. */
function decoderFor(header: string | undefined): Transform | undefined {
  const codings = (header ?? "identity")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "" && s !== "identity");
  if (codings.length === 0) return undefined;
  if (codings.length > 1)
    throw new ApiError("unsupported-encoding", `one Content-Encoding at most (got '${header}')`);
  switch (codings[0]) {
    case "gzip":
    case "x-gzip":
      return createGunzip();
    case "deflate":
      return createInflate();
    case "br":
      return createBrotliDecompress();
    default:
      throw new ApiError(
        "unsupported-encoding",
        `Content-Encoding '${codings[0]}' is not supported (use ${ENCODINGS.join(", ")})`,
      );
  }
}

function tooLarge(limit: number, what: string): ApiError {
  return new ApiError("payload-too-large", `${what} is over the body-size limit of ${limit} bytes`);
}

/**
 * Reads the whole body: at most `maxBodyBytes` on the wire and after decompression, within
 * `bodyTimeoutMs`. Rejects with an ApiError (413, 408, 400 bad-encoding, 415); the caller answers
 * it and closes the connection (the rest of the body is never read).
 */
export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<{ data: Buffer; wire: number }> {
  return new Promise((resolve, reject) => {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > limits.maxBodyBytes) {
      discardRest(req, limits);
      return reject(tooLarge(limits.maxBodyBytes, `the body (${declared} bytes)`));
    }
    let inflate: Transform | undefined;
    try {
      inflate = decoderFor(req.headers["content-encoding"]);
    } catch (e) {
      discardRest(req, limits);
      return reject(e);
    }
    const chunks: Buffer[] = [];
    let wire = 0;
    let size = 0;
    let settled = false;
    const finish = (err: unknown, data?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off("data", onWire);
      if (err) {
        inflate?.destroy();
        if (err instanceof ApiError && err.kind === "body-timeout") req.pause();
        else discardRest(req, limits);
        reject(err);
      } else resolve({ data: data!, wire });
    };
    const timer = setTimeout(
      () =>
        finish(
          new ApiError(
            "body-timeout",
            `the body did not arrive within ${limits.bodyTimeoutMs} ms (${wire} bytes received)`,
          ),
        ),
      limits.bodyTimeoutMs,
    );
    const onWire = (c: Buffer) => {
      wire += c.length;
      if (wire > limits.maxBodyBytes) finish(tooLarge(limits.maxBodyBytes, "the body"));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limits.maxBodyBytes) return finish(tooLarge(limits.maxBodyBytes, "the decompressed body"));
      chunks.push(c);
    };
    req.on("data", onWire);
    req.on("aborted", () => finish(new ApiError("malformed-request", "the client aborted the upload")));
    req.on("error", (e) =>
      finish(new ApiError("malformed-request", `reading the body failed: ${e.message}`)),
    );
    const source: Readable = inflate ? req.pipe(inflate) : req;
    if (inflate)
      inflate.on("error", (e) =>
        finish(
          new ApiError(
            "bad-encoding",
            `the body is not valid ${req.headers["content-encoding"]} data (${e.message})`,
          ),
        ),
      );
    source.on("data", onData);
    source.on("end", () => finish(undefined, Buffer.concat(chunks, size)));
  });
}

const discarding = new WeakMap<IncomingMessage, Promise<void>>();

/**
 * Resolves once a refused body that is being read and dropped has ended (or its connection was
 * cut): answer only then, since a client that sent `Connection: close` gets its connection closed
 * right after the answer, which would reset it mid-upload.
 */
export function refusedBodyDone(req: IncomingMessage): Promise<void> {
  return discarding.get(req) ?? Promise.resolve();
}

/** Most bytes, and longest time, spent reading and discarding a refused body before its connection is closed. */
const LINGER_BYTES_FACTOR = 8;
const LINGER_MS = 5000;

/**
 * Reads and drops the rest of a refused body, so that the client, still sending, reads the answer
 * instead of a reset (a lingering close); a client that keeps sending past a bound is cut off.
 */
export function discardRest(req: IncomingMessage, limits: BodyLimits): void {
  if (req.complete || discarding.has(req)) return;
  discarding.set(
    req,
    new Promise<void>((resolve) => {
      req.once("end", resolve);
      req.once("close", resolve);
    }),
  );
  let dropped = 0;
  const cap = LINGER_BYTES_FACTOR * limits.maxBodyBytes;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, LINGER_MS);
  timer.unref();
  req.on("data", (c: Buffer) => {
    dropped += c.length;
    if (dropped > cap) cut();
  });
  req.once("end", () => clearTimeout(timer));
  req.once("close", () => clearTimeout(timer));
  req.resume();
}

/** Whether a JSON text may hold a number that parses to +-Infinity (a long digit run or a 3-digit exponent). */
const MAYBE_HUGE = /\d{300}|[eE][+]?\d{3}/;

/** Parses JSON; a number beyond float64 (1e309) is a 422, not a silent Infinity. */
export function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError("malformed-request", `invalid JSON: ${(e as Error).message}`);
  }
  if (MAYBE_HUGE.test(text)) findNonFinite(value, "");
  return value;
}

/** Throws 422 non-finite-number for any number in `v` beyond the float64 range (found as +-Infinity). */
export function findNonFinite(v: unknown, path: string): void {
  if (typeof v === "number") {
    if (!Number.isFinite(v))
      throw new ApiError("non-finite-number", `${path || "the body"}: a number beyond the float64 range`);
  } else if (Array.isArray(v)) v.forEach((x, i) => findNonFinite(x, `${path}[${i}]`));
  else if (v !== null && typeof v === "object")
    for (const [k, x] of Object.entries(v)) findNonFinite(x, path ? `${path}.${k}` : k);
}

/** Parses a multipart/form-data body already read in full. */
export function parseMultipart(
  headers: IncomingMessage["headers"],
  data: Buffer,
  limits: BodyLimits,
): Promise<{ fields: Record<string, string>; files: UploadedFile[] }> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers,
        limits: {
          files: limits.maxImages,
          fields: MAX_MULTIPART_FIELDS,
          parts: limits.maxImages + MAX_MULTIPART_FIELDS,
          fieldSize: limits.maxBodyBytes,
          fileSize: limits.maxBodyBytes,
          fieldNameSize: 200,
        },
      });
    } catch (e) {
      return reject(new ApiError("malformed-request", `malformed multipart body: ${(e as Error).message}`));
    }
    const fields: Record<string, string> = {};
    const files: UploadedFile[] = [];
    let failed: ApiError | undefined;
    const fail = (e: ApiError) => (failed ??= e);
    bb.on("file", (name, stream, info) => {
      const parts: Buffer[] = [];
      stream.on("data", (c: Buffer) => parts.push(c));
      // A body that ends inside a file part fails the part's stream as well as busboy.
      stream.on("error", (e: Error) =>
        fail(new ApiError("malformed-request", `malformed multipart body: ${e.message}`)),
      );
      if (name === undefined || name === "")
        fail(new ApiError("malformed-request", "a multipart part has no field name"));
      else if (name !== "image")
        fail(new ApiError("validation-failed", `unexpected file field '${name}' (send images as 'image')`));
      stream.on("end", () => files.push({ bytes: Buffer.concat(parts), filename: info.filename ?? "" }));
    });
    bb.on("field", (name, value) => {
      if (name === undefined || name === "")
        return fail(new ApiError("malformed-request", "a multipart part has no field name"));
      fields[name] = value;
    });
    bb.on("filesLimit", () =>
      fail(new ApiError("too-many-images", `more uploaded files than the limit of ${limits.maxImages}`)),
    );
    bb.on("fieldsLimit", () =>
      fail(new ApiError("malformed-request", `more than ${MAX_MULTIPART_FIELDS} multipart text fields`)),
    );
    bb.on("partsLimit", () => fail(new ApiError("malformed-request", "too many multipart parts")));
    bb.on("error", (e: Error) => {
      fail(new ApiError("malformed-request", `malformed multipart body: ${e.message}`));
      reject(failed);
    });
    bb.on("close", () => (failed ? reject(failed) : resolve({ fields, files })));
    bb.end(data);
  });
}

/** Reads and parses the body of an inference request (JSON or multipart; anything else is 415). */
export async function readRequestBody(req: IncomingMessage, limits: BodyLimits): Promise<ParsedBody> {
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  const kind =
    type === "application/json" ? "json" : type === "multipart/form-data" ? "multipart" : undefined;
  if (!kind) {
    discardRest(req, limits);
    throw new ApiError(
      "unsupported-media-type",
      `send application/json or multipart/form-data (got ${req.headers["content-type"] ?? "no content type"})`,
    );
  }
  const { data, wire } = await readBody(req, limits);
  if (kind === "json") {
    const charset = /charset=([^;]+)/i
      .exec(req.headers["content-type"] ?? "")?.[1]
      ?.trim()
      .toLowerCase();
    if (charset && charset !== "utf-8" && charset !== "utf8")
      throw new ApiError("unsupported-media-type", `JSON must be UTF-8 (got charset ${charset})`);
    return { kind, value: parseJson(data.toString("utf8")), files: [], bytes: wire };
  }
  const { fields, files } = await parseMultipart(req.headers, data, limits);
  return { kind, value: fields, files, bytes: wire };
}
