/** The report's index.html: every picture with its caption, one self-contained page (no scripts, no external resources). */

export interface IndexFigure {
  /** File name, relative to the page (the pictures sit beside it). */
  file: string;
  title: string;
  caption: string;
  width: number;
  height: number;
  /** Image grids: scale up without smoothing. */
  pixelated: boolean;
}

export interface IndexPage {
  heading: string;
  /** Lines under the heading (what was drawn from what). */
  details: string[];
  figures: IndexFigure[];
  /** Lines saying which pictures were not drawn and why. */
  notes: string[];
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1e1e1e;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin:0 0 .4rem}
figure{margin:2rem 0;padding:1rem;border:1px solid #ddd;border-radius:6px;overflow-x:auto}
figcaption{margin-top:.6rem;line-height:1.45;max-width:80ch}
img{display:block;max-width:100%;height:auto}
img.px{image-rendering:pixelated}
ul.details{color:#444}
p.note{color:#8a4b00}
nav a{margin-right:1rem}`;

/** The page's HTML (deterministic: no dates, no absolute paths). */
export function renderIndex(page: IndexPage): string {
  const e = escapeHtml;
  const id = (f: IndexFigure) => f.file.replace(/\.png$/, "");
  const lines = [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(page.heading)}</title>`,
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    "<main>",
    `<h1>${e(page.heading)}</h1>`,
    '<ul class="details">',
    ...page.details.map((d) => `<li>${e(d)}</li>`),
    "</ul>",
    ...page.notes.map((n) => `<p class="note">${e(n)}</p>`),
    `<nav>${page.figures.map((f) => `<a href="#${e(id(f))}">${e(f.title)}</a>`).join(" ")}</nav>`,
  ];
  for (const f of page.figures) {
    lines.push(
      `<figure id="${e(id(f))}">`,
      `<h2>${e(f.title)}</h2>`,
      `<img src="${e(f.file)}" width="${f.width}" height="${f.height}" alt="${e(f.title)}"${f.pixelated ? ' class="px"' : ""}>`,
      `<figcaption>${e(f.caption)} <a href="${e(f.file)}">${e(f.file)}</a></figcaption>`,
      "</figure>",
    );
  }
  lines.push("</main>", "</body>", "</html>", "");
  return lines.join("\n");
}
