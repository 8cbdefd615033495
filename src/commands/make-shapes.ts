/** `equivae make-shapes`: makeShapes (src/data/shapes.ts), a small seeded colour image-folder dataset. */
import type { CommandSpec, FlagSpec, FlagValues } from "../util/flags.js";

export const MAKE_SHAPES_FLAGS = [
  {
    flag: "out",
    kind: "string",
    arg: "DIR",
    required: true,
    help: "output directory (must not exist, or be empty)",
  },
  { flag: "per-class", kind: "int", min: 2, dflt: 300, help: "training + validation images per class" },
  { flag: "test-per-class", kind: "int", min: 0, dfltText: "per-class / 4", help: "test images per class" },
  { flag: "size", kind: "int", min: 8, max: 256, dflt: 32, help: "image side" },
  { flag: "seed", kind: "int", min: 0, dflt: 1, help: "random seed" },
] as const satisfies readonly FlagSpec[];

async function run({ values: v }: { values: FlagValues<typeof MAKE_SHAPES_FLAGS> }): Promise<void> {
  const { makeShapes } = await import("../data/shapes.js");
  const r = makeShapes({
    out: v.out,
    perClass: v["per-class"],
    testPerClass: v["test-per-class"],
    size: v.size,
    seed: v.seed,
  });
  console.log(
    `wrote ${r.train} training and ${r.test} test images of ${r.classNames.join(", ")} to ${r.root}`,
  );
}

export const command: CommandSpec<typeof MAKE_SHAPES_FLAGS> = {
  name: "make-shapes",
  usage: "equivae make-shapes --out DIR [options]",
  intro:
    "  Writes DIR/<class>/*.png and DIR/test/<class>/*.png: colour images of a circle, a square or a\n" +
    "  triangle (the classes) with random colour, position, size and rotation on a random gradient\n" +
    "  background. Train on it with: equivae train --dataset folder --data-dir DIR",
  flags: MAKE_SHAPES_FLAGS,
  run,
};
