/**
 * Errors of the imaging room. Each kind is a key of the service's ERROR_TABLE (src/serve/errors.ts),
 * which maps it to an HTTP status; this module does not depend on the server.
 */
export type ImagingErrorKind =
  | "invalid-image"
  | "unsupported-image-type"
  | "image-too-large"
  | "image-too-small"
  | "invalid-pixels"
  | "invalid-base64";

/** An image (or pixel array, or base64 string) that cannot be used; the message starts with `${what}: `. */
export class ImagingError extends Error {
  constructor(
    readonly kind: ImagingErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "ImagingError";
  }
}
