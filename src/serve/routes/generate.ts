/** POST /generate: decode (v, z) pairs, with z given, interpolated, encoded from images or drawn from the prior. */
import type { Router } from "express";
import type { components } from "../../generated/openapi.js";
import { encodePng, tile, type Preprocessing } from "../../imaging/index.js";
import { Rng } from "../../util/rng.js";
import { ApiError } from "../errors.js";
import { inferenceRoute, rows, type Call, type ServeDeps } from "../pipeline.js";
import { centroid, repeat, vector } from "./shared.js";

type Schemas = components["schemas"];

interface Zs {
  z: Float32Array;
  n: number;
  from: Schemas["GenerateResponse"]["z_from"];
  pre?: Preprocessing[];
  /** Grid columns for PNG output (interpolations lie in one row). */
  cols?: number;
}

export function generateRoutes(router: Router, deps: ServeDeps): void {
  const { limits } = deps;

  const atMost = (n: number, what: string) => {
    if (n > limits.maxImages)
      throw new ApiError("too-many-images", `${what}; the limit is ${limits.maxImages}`);
  };

  /** The z rows to decode, from whichever source the request names. */
  const zsOf = async (call: Call): Promise<Zs> => {
    const b = call.body;
    const { queue } = call.model;
    const c = call.model.engine.config;
    if (b.z !== undefined) {
      const list: number[][] = Array.isArray(b.z[0]) ? b.z : [b.z];
      const n = list.length;
      atMost(n, `${n} z vectors`);
      if (b.count !== undefined && b.count !== n)
        throw new ApiError("invalid-dimensions", `count ${b.count} does not match the ${n} z vectors given`);
      const z = new Float32Array(n * c.dz);
      list.forEach((r, i) => z.set(vector(r, c.dz, n === 1 ? "z" : `z[${i}]`), i * c.dz));
      return { z, n, from: "given" };
    }
    if (b.interpolate !== undefined) {
      const from = vector(b.interpolate.from, c.dz, "interpolate.from");
      const to = vector(b.interpolate.to, c.dz, "interpolate.to");
      const n: number = b.interpolate.steps ?? 8;
      atMost(n, `${n} steps`);
      const z = new Float32Array(n * c.dz);
      for (let i = 0; i < n; i++) {
        const t = i / (n - 1);
        for (let j = 0; j < c.dz; j++) z[i * c.dz + j] = from[j] + t * (to[j] - from[j]);
      }
      return { z, n, from: "interpolate", cols: n };
    }
    if (call.inputs.count > 0) {
      const { x, n, pre } = await call.images();
      const [vx] = await queue.submit("invariant", n, [x], call.signal);
      const [mu] = await queue.submit("equivariant", n, [x, vx], call.signal);
      return { z: mu, n, from: "images", pre };
    }
    const n: number = b.count ?? 1;
    atMost(n, `count ${n}`);
    const rng = new Rng(b.seed ?? 0);
    const z = Float32Array.from({ length: n * c.dz }, () => {
      const u = Math.max(rng.next(), 1e-12);
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
    });
    return { z, n, from: "prior" };
  };

  router.post(
    "/generate",
    inferenceRoute(deps, "generate", async (call) => {
      const { body: b, req, res } = call;
      const { engine, queue } = call.model;
      const c = engine.config;
      const px = c.height * c.width * c.channels;
      if ((b.v === undefined) === (b.class === undefined))
        throw new ApiError(
          "validation-failed",
          "give exactly one of 'class' (label or name) and 'v' (dv numbers)",
        );
      const v = b.v !== undefined ? vector(b.v, c.dv, "v") : centroid(engine, b.class);
      const sources = [b.z !== undefined, b.interpolate !== undefined, call.inputs.count > 0];
      if (sources.filter(Boolean).length > 1)
        throw new ApiError("validation-failed", "give at most one source of z: 'z', 'interpolate' or images");
      const { z, n, from, pre, cols } = await zsOf(call);
      const [out] = await queue.submit("decode", n, [repeat(v, n), z], call.signal);
      const format =
        b.format ?? (req.accepts(["application/json", "image/png"]) === "image/png" ? "png" : "json");
      if (format === "json") {
        res.json({
          shape: [c.height, c.width, c.channels],
          images: rows(out, px),
          v: Array.from(v),
          z: rows(z, c.dz),
          z_from: from,
          ...(pre ? { preprocessing: pre } : {}),
        } satisfies Schemas["GenerateResponse"]);
        return;
      }
      let png: Buffer;
      if (n === 1) png = encodePng(out, c.height, c.width, c.channels);
      else {
        const g = tile(out, n, c.height, c.width, c.channels, cols ?? Math.ceil(Math.sqrt(n)));
        png = encodePng(g.data, g.height, g.width, c.channels);
      }
      res.type("image/png").send(png);
    }),
  );
}
