/** POST /classify: nearest centroid of v, or q(y|x) on semi-supervised models. */
import type { Router } from "express";
import type { components } from "../../generated/openapi.js";
import { rankByCentroid, rankProbs } from "../../inference/engine.js";
import { ApiError } from "../errors.js";
import { inferenceRoute, type ServeDeps } from "../pipeline.js";

type Schemas = components["schemas"];

export function classifyRoutes(router: Router, deps: ServeDeps): void {
  router.post(
    "/classify",
    inferenceRoute(deps, "classify", async ({ body, res, model, signal, images }) => {
      const { engine, queue } = model;
      const K = engine.classNames.length;
      const topK = Math.min(body.top_k ?? 3, K);
      const method = body.method ?? "centroid";
      if (method === "posterior" && !engine.hasPosterior)
        throw new ApiError(
          "method-unavailable",
          "method 'posterior' needs q(y|x), which this model does not have (it was trained supervised); use method 'centroid'",
        );
      const { x, n, pre } = await images();
      let ranked;
      if (method === "posterior") {
        const [probs] = await queue.submit("classifier", n, [x], signal);
        ranked = rankProbs(probs, K, engine.classNames, topK);
      } else {
        const [v] = await queue.submit("invariant", n, [x], signal);
        ranked = rankByCentroid(v, engine.config.dv, engine.centroids, engine.classNames, topK);
      }
      res.json({
        method,
        predictions: ranked.map((r) => ({ label: r[0].label, name: r[0].name, p: r[0].p, top_k: r })),
        preprocessing: pre,
      } satisfies Schemas["ClassifyResponse"]);
    }),
  );
}
