import type { EpochMetrics } from "../checkpoint/index.js";
import { LINE_HEIGHT, textWidth } from "./font.js";
import { FRAME, INK, Raster, type Rgb } from "./raster.js";

const PANEL_W = 440;
const PANEL_H = 280;
const MARGIN = 12;
const HEADER_H = 40;
const FONT = 2;

const AXIS: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];
const MUTED: Rgb = [110, 110, 110];

export interface CurvePanel {
  title: string;
  colour: Rgb;
  value: (m: EpochMetrics) => number;
}

/** The four panels, left to right then top to bottom. */
export const CURVE_PANELS: CurvePanel[] = [
  { title: "-ELBO (nats)", colour: [31, 90, 180], value: (m) => -m.elbo },
  { title: "Reconstruction (nats)", colour: [20, 130, 60], value: (m) => m.recon },
  { title: "KL (nats)", colour: [130, 60, 170], value: (m) => m.kl },
  { title: "Val. centroid error (%)", colour: [200, 40, 40], value: (m) => m.valCentroidError * 100 },
];

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Size of the curves picture and the rectangle of each panel (same order as CURVE_PANELS). */
export function curvesLayout(): { width: number; height: number; panels: Rect[] } {
  const panels: Rect[] = CURVE_PANELS.map((_, i) => ({
    x: MARGIN + (i % 2) * (PANEL_W + MARGIN),
    y: HEADER_H + MARGIN + Math.floor(i / 2) * (PANEL_H + MARGIN),
    w: PANEL_W,
    h: PANEL_H,
  }));
  return { width: 2 * PANEL_W + 3 * MARGIN, height: HEADER_H + 2 * PANEL_H + 3 * MARGIN, panels };
}

/** Decimals that tell `lo` and `hi` apart (and keep small values readable). */
function decimalsFor(lo: number, hi: number): number {
  const span = Math.abs(hi - lo);
  const ref = span > 0 ? span : Math.max(Math.abs(hi), Math.abs(lo));
  if (!(ref > 0)) return 0;
  return Math.max(0, Math.min(4, Math.ceil(-Math.log10(ref)) + 1));
}

export function formatTick(x: number, decimals: number): string {
  const s = x.toFixed(decimals);
  return s === `-${(0).toFixed(decimals)}` ? s.slice(1) : s;
}

/**
 * Labelled epochs: the first and the last, and between them multiples of a round step
 * (1, 2, 5, 10, 20, ...) giving at most 6 labels, none crowding the end labels.
 */
export function epochTicks(eMin: number, eMax: number): number[] {
  if (!(eMax > eMin)) return [eMin];
  const span = eMax - eMin;
  let step = 1;
  for (let k = 1; span / step > 5; k++) step = [1, 2, 5][k % 3] * 10 ** Math.floor(k / 3);
  const out = [eMin];
  for (let e = Math.ceil(eMin / step) * step; e < eMax; e += step) {
    if (e - eMin >= step * 0.6 && eMax - e >= step * 0.6) out.push(e);
  }
  out.push(eMax);
  return out;
}

function drawPanel(r: Raster, box: Rect, panel: CurvePanel, metrics: EpochMetrics[]): void {
  // Frame and title.
  r.strokeRect(box.x, box.y, box.w, box.h, FRAME);
  r.text(box.x + box.w / 2, box.y + 10, panel.title, INK, FONT, "center");

  const left = box.x + 92;
  const right = box.x + box.w - 18;
  const top = box.y + 42;
  const bottom = box.y + box.h - 58;
  const pts = metrics
    .map((m) => ({ e: m.epoch, y: panel.value(m) }))
    .filter((p) => Number.isFinite(p.e) && Number.isFinite(p.y));

  // Axes.
  r.fillRect(left, top - 4, 2, bottom - top + 6, AXIS);
  r.fillRect(left, bottom, right - left + 1, 2, AXIS);
  const xLabelY = bottom + 10;
  r.text((left + right) / 2, xLabelY + LINE_HEIGHT * FONT + 8, "epoch", MUTED, FONT, "center");
  if (pts.length === 0) {
    r.text((left + right) / 2, (top + bottom) / 2 - 7, "no data", MUTED, FONT, "center");
    return;
  }

  const ys = pts.map((p) => p.y);
  const es = pts.map((p) => p.e);
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const eMin = Math.min(...es);
  const eMax = Math.max(...es);
  const pad = 10;
  const yOf = (y: number) =>
    yMax > yMin ? bottom - pad - ((y - yMin) / (yMax - yMin)) * (bottom - top - 2 * pad) : (top + bottom) / 2;
  const xOf = (e: number) =>
    eMax > eMin ? left + pad + ((e - eMin) / (eMax - eMin)) * (right - left - 2 * pad) : (left + right) / 2;

  // Y ticks at the minimum and maximum value, with light grid lines.
  const dec = decimalsFor(yMin, yMax);
  const yTicks = yMax > yMin ? [yMin, yMax] : [yMin];
  for (const t of yTicks) {
    const py = Math.round(yOf(t));
    r.fillRect(left + 2, py, right - left - 1, 1, GRID);
    r.fillRect(left - 6, py, 6, 2, AXIS);
    r.text(left - 10, py - (7 * FONT) / 2 + 1, formatTick(t, dec), INK, FONT, "right");
  }
  // X ticks: a mark at every epoch (when few), labels at the first and last.
  const span = eMax - eMin;
  if (span > 0 && span <= 60) {
    for (let e = Math.ceil(eMin); e <= eMax; e++) r.fillRect(Math.round(xOf(e)), bottom + 2, 1, 4, AXIS);
  }
  for (const e of epochTicks(eMin, eMax)) {
    const px = Math.round(xOf(e));
    r.fillRect(px, bottom + 2, 2, 6, AXIS);
    const label = formatTick(e, Number.isInteger(e) ? 0 : 1);
    // Keep the labels inside the plot's width.
    const w = textWidth(label, FONT);
    const x = Math.min(Math.max(px - w / 2, left - 4), right + 8 - w);
    r.text(x, xLabelY, label, INK, FONT);
  }

  // The curve, with a marker at each epoch when there are few.
  for (let i = 1; i < pts.length; i++) {
    r.line(xOf(pts[i - 1].e), yOf(pts[i - 1].y), xOf(pts[i].e), yOf(pts[i].y), panel.colour, 2);
  }
  if (pts.length <= 60) {
    for (const p of pts) r.fillRect(Math.round(xOf(p.e)) - 2, Math.round(yOf(p.y)) - 2, 5, 5, panel.colour);
  }
}

/** Training curves of a checkpoint (one panel per CURVE_PANELS entry) as an RGB raster. */
export function renderCurves(metrics: EpochMetrics[], title: string): Raster {
  const layout = curvesLayout();
  const r = new Raster(layout.width, layout.height);
  r.text(layout.width / 2, 12, title, INK, FONT, "center");
  const sorted = [...metrics].sort((a, b) => a.epoch - b.epoch);
  CURVE_PANELS.forEach((p, i) => drawPanel(r, layout.panels[i], p, sorted));
  return r;
}
