/**
 * A mistake the user can fix (bad flag, missing file, malformed data). The CLI prints
 * its message as one line and exits with `exitCode`; it never shows a stack trace.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = "UserError";
  }
}

/** One-line description of any thrown value, for logs and CLI errors. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message.split("\n")[0] ?? String(e);
  return String(e);
}
