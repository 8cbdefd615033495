import { GLYPH_HEIGHT, textWidth } from "./font.js";
import { cutLabel } from "./grid.js";
import { FRAME, INK, Raster, type Rgb } from "./raster.js";

/** Side of the square plot area (pixels). */
export const PLOT_SIZE = 560;
const MARGIN = 12;
const HEADER_H = 36;
const TITLE_SCALE = 2;
/** Inside the plot's frame, kept free of points. */
const PLOT_PAD = 10;
/** Legend: a swatch and a class name per row. */
const SWATCH = 12;
const SWATCH_GAP = 8;
const LEGEND_ROW = 22;
const LEGEND_PAD = 8;
/** Widest class name in the legend (pixels); longer ones are cut. */
const LEGEND_TEXT_MAX = 160;

/**
 * Class colours, one per class in class order: Tableau's 10 (its grey replaced by navy, so every
 * colour is saturated and none is confused with text or frames), then their light variants.
 * Classes past these get generated colours (see classColours).
 */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [20, 40, 120],
  [188, 189, 34],
  [23, 190, 207],
  [174, 199, 232],
  [255, 187, 120],
  [152, 223, 138],
  [255, 152, 150],
  [197, 176, 213],
  [196, 156, 148],
  [247, 182, 210],
  [120, 140, 220],
  [219, 219, 141],
  [158, 218, 229],
];

/** Whether a colour is a class colour rather than text, frame or background (all grey). */
export function isSaturated(c: Rgb): boolean {
  return Math.max(c[0], c[1], c[2]) - Math.min(c[0], c[1], c[2]) > 40;
}

function hsv(h: number, s: number, v: number): Rgb {
  const f = (n: number) => {
    const k = (n + h * 6) % 6;
    return Math.round(255 * (v - v * s * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

/** K distinct saturated colours: PALETTE, then hues a golden angle apart. */
export function classColours(K: number): Rgb[] {
  const out: Rgb[] = PALETTE.slice(0, K);
  const seen = new Set(out.map((c) => c.join(",")));
  for (let i = 0; out.length < K; i++) {
    const c = hsv((i * 0.618033988749895) % 1, 0.55 + 0.35 * ((i >> 1) % 2), 0.95 - 0.3 * (i % 2));
    if (!isSaturated(c) || seen.has(c.join(","))) continue;
    seen.add(c.join(","));
    out.push(c);
  }
  return out;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface ScatterLayout {
  width: number;
  height: number;
  /** The framed plot area. */
  plot: Rect;
  /** The legend (all its swatches and names). */
  legend: Rect;
  /** Font scale of the legend's names. */
  legendScale: number;
  /** Each class's swatch and the top-left of its name. */
  items: Array<{ swatch: Rect; textX: number; textY: number; text: string }>;
}

/** Where the plot and the legend of a scatter picture of these classes go. */
export function scatterLayout(classNames: string[]): ScatterLayout {
  const K = classNames.length;
  const scale = classNames.every((n) => textWidth(n, 2) <= LEGEND_TEXT_MAX) ? 2 : 1;
  const names = classNames.map((n) => cutLabel(n, LEGEND_TEXT_MAX, scale));
  const textW = Math.max(0, ...names.map((n) => textWidth(n, scale)));
  const plot: Rect = { x: MARGIN, y: HEADER_H, w: PLOT_SIZE, h: PLOT_SIZE };
  const perCol = Math.max(1, Math.floor((PLOT_SIZE - 2 * LEGEND_PAD) / LEGEND_ROW));
  const cols = Math.max(1, Math.ceil(K / perCol));
  const colW = SWATCH + SWATCH_GAP + textW + LEGEND_PAD;
  const legend: Rect = {
    x: plot.x + plot.w + MARGIN,
    y: plot.y,
    w: LEGEND_PAD + cols * colW,
    h: 2 * LEGEND_PAD + Math.min(K, perCol) * LEGEND_ROW,
  };
  const items = names.map((text, k) => {
    const x = legend.x + LEGEND_PAD + Math.floor(k / perCol) * colW;
    const y = legend.y + LEGEND_PAD + (k % perCol) * LEGEND_ROW;
    const swatch: Rect = { x, y: y + (LEGEND_ROW - SWATCH) / 2, w: SWATCH, h: SWATCH };
    const textY = y + Math.round((LEGEND_ROW - GLYPH_HEIGHT * scale) / 2);
    return { swatch, textX: x + SWATCH + SWATCH_GAP, textY, text };
  });
  return {
    width: legend.x + legend.w + MARGIN,
    height: plot.y + plot.h + MARGIN,
    plot,
    legend,
    legendScale: scale,
    items,
  };
}

/** The pixels of one point: a disk of diameter 5 centred on the point. */
const DOT: Array<[number, number]> = [];
for (let dy = -2; dy <= 2; dy++)
  for (let dx = -2; dx <= 2; dx++) if (dx * dx + dy * dy <= 5) DOT.push([dx, dy]);

/**
 * A scatter plot of n 2-D points ([n, 2] row-major) coloured by class (labels[i] in [0, K)),
 * drawn in the given order, with the same scale on both axes, a title and a legend of every
 * class. Points with a label outside [0, K) or a non-finite coordinate are left out.
 */
export function renderScatter(
  xy: ArrayLike<number>,
  labels: ArrayLike<number>,
  classNames: string[],
  title: string,
): Raster {
  const K = classNames.length;
  const layout = scatterLayout(classNames);
  const colours = classColours(K);
  const r = new Raster(layout.width, layout.height);
  r.text(
    layout.width / 2,
    10,
    cutLabel(title, layout.width - 2 * MARGIN, TITLE_SCALE),
    INK,
    TITLE_SCALE,
    "center",
  );
  const { plot } = layout;
  r.strokeRect(plot.x, plot.y, plot.w, plot.h, FRAME);

  const n = labels.length;
  const keep = (i: number) =>
    labels[i] >= 0 && labels[i] < K && Number.isFinite(xy[2 * i]) && Number.isFinite(xy[2 * i + 1]);
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    if (!keep(i)) continue;
    x0 = Math.min(x0, xy[2 * i]);
    x1 = Math.max(x1, xy[2 * i]);
    y0 = Math.min(y0, xy[2 * i + 1]);
    y1 = Math.max(y1, xy[2 * i + 1]);
  }
  if (x0 <= x1) {
    const inner = plot.w - 2 * PLOT_PAD - 4;
    const span = Math.max(x1 - x0, y1 - y0) || 1;
    const s = inner / span;
    const cx = plot.x + plot.w / 2;
    const cy = plot.y + plot.h / 2;
    for (let i = 0; i < n; i++) {
      if (!keep(i)) continue;
      const px = Math.round(cx + (xy[2 * i] - (x0 + x1) / 2) * s);
      // Screen y grows downwards: flip so that larger values are higher up.
      const py = Math.round(cy - (xy[2 * i + 1] - (y0 + y1) / 2) * s);
      const c = colours[labels[i]];
      for (const [dx, dy] of DOT) r.set(px + dx, py + dy, c);
    }
  }

  layout.items.forEach((it, k) => {
    r.fillRect(it.swatch.x, it.swatch.y, it.swatch.w, it.swatch.h, colours[k]);
    r.text(it.textX, it.textY, it.text, INK, layout.legendScale);
  });
  return r;
}
