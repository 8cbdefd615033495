/**
 * A mistake the user can fix (a bad flag, a missing file, malformed data). The message says what
 * is wrong in one line; what a front end does with it (a CLI exit code, an HTTP status) is that
 * front end's business: src/commands/exit-codes.ts maps errors to exit codes in one place.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/** Training produced a non-finite loss; the message names the last good checkpoint. */
export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrainingDivergedError";
  }
}

/** A service could not start (for example, none of its models loads). */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** One-line description of any thrown value, for logs and CLI errors. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message.split("\n")[0] ?? String(e);
  return String(e);
}
