/** `equivae serve`: its flag table is SERVE_FLAGS (src/serve/config.ts); src/serve/command.ts does the work. */
import { SERVE_FLAGS } from "../serve/config.js";
import type { CommandSpec, FlagValues } from "../util/flags.js";

async function run({ values }: { values: FlagValues<typeof SERVE_FLAGS> }): Promise<void> {
  // The server (express, ONNX Runtime, the worker pools) loads only when it is to run.
  const { runServe, serveConfigFrom } = await import("../serve/command.js");
  await runServe(serveConfigFrom(values, process.env));
}

export const command: CommandSpec<typeof SERVE_FLAGS> = {
  name: "serve",
  usage: "equivae serve [options]",
  flags: SERVE_FLAGS,
  notes:
    "  Decoding and inference run on --workers threads (onnx engine); this thread parses, admits,\n" +
    "  batches and replies. SIGTERM / SIGINT: /readyz answers 503 for --drain-secs while requests are\n" +
    "  still served, then the listener closes, in-flight requests finish, and the process exits 0.",
  run,
};
