/**
 * An image-decoding worker thread (run by piscina): decodes the images of one request into a model
 * batch. An ImagingError comes back as data (Reply), with its kind, since an Error loses its class
 * crossing threads.
 */
import { decodeBatch, toFailure } from "../../imaging/batch.js";
import { errorMessage } from "../../util/errors.js";
import type { DecodeTask, Reply } from "./protocol.js";

export default async function run(task: DecodeTask): Promise<Reply> {
  try {
    return { ok: true, decoded: await decodeBatch(task.request) };
  } catch (e) {
    return { ok: false, imaging: toFailure(e), message: errorMessage(e) };
  }
}
