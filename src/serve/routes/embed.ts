/** POST /embed/invariant and /embed/equivariant. */
import type { Router } from "express";
import type { components } from "../../generated/openapi.js";
import { ApiError } from "../errors.js";
import { inferenceRoute, rows, type ServeDeps } from "../pipeline.js";
import { centroid, repeat, vector } from "./shared.js";

type Schemas = components["schemas"];

export function embedRoutes(router: Router, deps: ServeDeps): void {
  router.post(
    "/embed/invariant",
    inferenceRoute(deps, "embedInvariant", async ({ body, res, model, signal, images }) => {
      const { engine, queue } = model;
      const { x, n, pre } = await images();
      const set = body.set === true;
      const v = set
        ? await queue.alone("invariant_set", n, () => engine.embedSet(x, [n]), signal)
        : (await queue.submit("invariant", n, [x], signal))[0];
      res.json({
        v: rows(v, engine.config.dv),
        set,
        preprocessing: pre,
      } satisfies Schemas["EmbedInvariantResponse"]);
    }),
  );

  router.post(
    "/embed/equivariant",
    inferenceRoute(deps, "embedEquivariant", async ({ body, res, model, signal, images }) => {
      const { engine, queue } = model;
      const c = engine.config;
      if (body.v !== undefined && body.class !== undefined)
        throw new ApiError("validation-failed", "give 'class' or 'v', not both");
      const given = body.v !== undefined ? vector(body.v, c.dv, "v") : undefined;
      const fromClass = body.class !== undefined ? centroid(engine, body.class) : undefined;
      const { x, n, pre } = await images();
      let v: Float32Array;
      let from: "image" | "class" | "given";
      if (given) {
        v = repeat(given, n);
        from = "given";
      } else if (fromClass) {
        v = repeat(fromClass, n);
        from = "class";
      } else {
        v = (await queue.submit("invariant", n, [x], signal))[0];
        from = "image";
      }
      const [mu, logvar] = await queue.submit("equivariant", n, [x, v], signal);
      res.json({
        mu: rows(mu, c.dz),
        logvar: rows(logvar, c.dz),
        v: rows(v, c.dv),
        v_from: from,
        preprocessing: pre,
      } satisfies Schemas["EmbedEquivariantResponse"]);
    }),
  );
}
