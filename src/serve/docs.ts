import { createHash } from "node:crypto";
import { LIMIT_FLAGS, MIN_IMAGE_SIDE, type Limits } from "./config.js";
import { ERROR_TABLE, PROBLEM_TYPE_BASE } from "./errors.js";
import type { Spec } from "./spec.js";

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function inline(s: string): string {
  return esc(s)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
}

/** A small Markdown subset: paragraphs, pipe tables (`\|` for a pipe in a cell), inline code and bold. */
function markdown(md: string): string {
  const out: string[] = [];
  for (const block of md.trim().split(/\n\s*\n/)) {
    const lines = block.split("\n").map((l) => l.trim());
    if (lines.every((l) => l.startsWith("|"))) {
      // Cells split at unescaped pipes; `\|` is a pipe inside a cell (GFM), e.g. q(y\|x).
      const cells = (l: string) =>
        l
          .replace(/^\||(?<!\\)\|$/g, "")
          .split(/(?<!\\)\|/)
          .map((x) => x.trim().replace(/\\\|/g, "|"));
      const [head, , ...body] = lines;
      out.push(
        `<table><tr>${cells(head)
          .map((h) => `<th>${inline(h)}</th>`)
          .join("")}</tr>` +
          body
            .map(
              (r) =>
                `<tr>${cells(r)
                  .map((d) => `<td>${inline(d)}</td>`)
                  .join("")}</tr>`,
            )
            .join("") +
          "</table>",
      );
    } else out.push(`<p>${inline(lines.join(" "))}</p>`);
  }
  return out.join("\n");
}

/** Pretty JSON of a schema with $refs turned into links to the schema section. */
function schemaHtml(s: unknown): string {
  return esc(JSON.stringify(s, null, 2)).replace(
    /&quot;#\/components\/schemas\/([A-Za-z0-9_]+)&quot;/g,
    (_m, name: string) => `<a href="#schema-${name}">${name}</a>`,
  );
}

const CSS = `body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.6rem;overflow:auto;border-radius:4px}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
.m{display:inline-block;min-width:3.5rem;font-weight:bold;color:#fff;background:#2a7;border-radius:3px;padding:0 .3rem;text-align:center}
.m.post{background:#27a}section.op{border-top:1px solid #ddd;margin-top:1.5rem}:target{background:#ffc}`;

/**
 * The page's Content-Security-Policy: its one inline style by hash, and nothing else (no scripts,
 * images, fonts, frames or forms; its links are same-page anchors and /openapi.yaml).
 */
export const DOCS_CSP =
  `default-src 'none'; style-src 'sha256-${createHash("sha256").update(CSS).digest("base64")}'; ` +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The spec as one static HTML page (no scripts, no external styles). */
export function renderDocs(spec: Spec, limits: Limits): string {
  const d = spec.doc;
  const ops: string[] = [];
  const toc: string[] = [];
  for (const [path, item] of Object.entries(d.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const id = `op-${op.operationId ?? method + path}`;
      toc.push(
        `<li><a href="#${id}"><code>${method.toUpperCase()} ${esc(path)}</code></a> ${inline(op.summary ?? "")}</li>`,
      );
      const parts = [
        `<section class="op" id="${id}"><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code> (also <code>/v1${esc(path)}</code>)</h3>`,
        `<p>${inline(op.summary ?? "")}</p>`,
      ];
      if (op.description) parts.push(markdown(op.description));
      for (const prm of op.parameters ?? [])
        parts.push(
          `<p>Parameter <code>${esc(prm.name)}</code> (${esc(prm.in)}): ${inline(prm.description ?? "")}</p>`,
        );
      const body = op.requestBody?.content;
      if (body) {
        parts.push("<h4>Request body</h4>");
        for (const [type, c] of Object.entries(body as Record<string, { schema: unknown }>))
          parts.push(`<p><code>${esc(type)}</code></p><pre>${schemaHtml(c.schema)}</pre>`);
      }
      parts.push("<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>content</th></tr>");
      for (const [status, r0] of Object.entries(op.responses ?? {}) as Array<[string, any]>) {
        const r = r0.$ref ? d.components.responses?.[String(r0.$ref).split("/").pop()!] : r0;
        const types = Object.entries((r?.content ?? {}) as Record<string, { schema: unknown }>)
          .map(([t, c]) => `<code>${esc(t)}</code> ${schemaHtml(c.schema)}`)
          .join("<br>");
        parts.push(
          `<tr><td>${esc(status)}</td><td>${inline(r?.description ?? "")}</td><td>${types}</td></tr>`,
        );
      }
      parts.push("</table></section>");
      ops.push(parts.join("\n"));
    }
  }
  const errors = Object.entries(ERROR_TABLE)
    .map(
      ([k, v]) =>
        `<tr id="problem-${k}"><td><code>${PROBLEM_TYPE_BASE}${k}</code></td><td>${v.status}</td><td>${esc(v.title)}</td><td>${inline(v.when)}</td></tr>`,
    )
    .join("\n");
  const lim = LIMIT_FLAGS.map(
    (l) =>
      `<tr><td><code>--${l.flag}</code></td><td><code>${l.env}</code></td><td>${l.dflt}</td><td>${limits[l.key]}</td><td>${esc(l.help)}</td></tr>`,
  ).join("\n");
  const schemas = Object.entries(d.components.schemas)
    .map(([name, s]) => `<h3 id="schema-${name}">${esc(name)}</h3><pre>${schemaHtml(s)}</pre>`)
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.info.title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>${CSS}</style></head>
<body><h1>${esc(d.info.title)} <small>${esc(d.info.version)}</small></h1>
<p>The machine-readable spec: <a href="/openapi.yaml">/openapi.yaml</a> (OpenAPI 3.1).</p>
${markdown(d.info.description ?? "")}
<h2>Endpoints</h2><ul>${toc.join("\n")}</ul>
${ops.join("\n")}
<h2 id="errors">Errors</h2>
<p>Every error is an RFC 9457 problem (<code>application/problem+json</code>) with <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, <code>instance</code> and <code>request_id</code> (also in the <code>X-Request-Id</code> header and the server's request log line).</p>
<table><tr><th>type</th><th>status</th><th>title</th><th>when</th></tr>
${errors}
</table>
<h2 id="limits">Limits</h2>
<p>Images smaller than ${MIN_IMAGE_SIDE}x${MIN_IMAGE_SIDE} are rejected. Each limit has a flag of <code>equivae serve</code> and an environment-variable twin.</p>
<table><tr><th>flag</th><th>environment</th><th>default</th><th>in force</th><th>meaning</th></tr>
${lim}
</table>
<h2>Schemas</h2>
${schemas}
</body></html>
`;
}
