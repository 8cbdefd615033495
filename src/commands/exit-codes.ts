import { InputError, StartupError, TrainingDivergedError, errorMessage } from "../util/errors.js";

/**
 * The CLI's exit codes, in one place. Library code throws errors that say what is wrong
 * (src/util/errors.ts); only the command layer turns them into a process exit status.
 */
export const EXIT = {
  ok: 0,
  /** Anything unexpected (a bug, an I/O failure): the message, and the stack with EQUIVAE_DEBUG=1. */
  failure: 1,
  /** A mistake the user can fix: a bad flag, a missing file, malformed data. */
  input: 2,
  /** Training diverged (non-finite loss); the last good checkpoint is kept. */
  diverged: 3,
} as const;

/** The exit code for an error thrown by a command. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof InputError) return EXIT.input;
  if (e instanceof TrainingDivergedError) return EXIT.diverged;
  if (e instanceof StartupError) return EXIT.failure;
  return EXIT.failure;
}

/** Whether the error is one the user caused or expects, so that no stack trace helps. */
export function isExpected(e: unknown): boolean {
  return e instanceof InputError || e instanceof TrainingDivergedError || e instanceof StartupError;
}

/** Prints a command's error as one line (and the stack for unexpected ones with EQUIVAE_DEBUG=1). */
export function reportError(e: unknown, write: (line: string) => void = (l) => console.error(l)): number {
  write(`error: ${errorMessage(e)}`);
  if (!isExpected(e) && process.env.EQUIVAE_DEBUG) console.error(e);
  return exitCodeFor(e);
}
