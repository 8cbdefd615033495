// The demo page's script (served as it is at /demo/demo.js; no build step, no dependencies).
// Every call goes to this server's API with relative URLs, with `Authorization: Bearer <key>` when
// the API-key field is filled:
//   GET  v1/models                          the models, their input size, classes, dz and z_activity
//   POST v1/models/{id}/classify            multipart: image (PNG), invert, top_k -> top-k bars
//   POST v1/models/{id}/embed/equivariant   multipart: image, invert -> mu (the input's style z)
//   POST v1/models/{id}/generate            JSON {class, z, format: "png"} -> one PNG per class,
//                                           and the generator panel's image
// A drawing is sent the way MNIST was made: the ink's bounding box scaled into a 20x20 box (of a
// 28x28 image; proportionally for other sizes) and the image centred on the ink's centre of mass.

const $ = (id) => document.getElementById(id);
const el = {
  status: $("status"),
  model: $("model"),
  key: $("api-key"),
  drawArea: $("draw-area"),
  pad: $("pad"),
  clear: $("clear"),
  darkOnLight: $("dark-on-light"),
  file: $("file"),
  drop: $("drop"),
  upload: $("upload-preview"),
  seen: $("model-input"),
  seenCaption: $("model-input-caption"),
  results: $("results"),
  prediction: $("prediction"),
  topk: $("topk"),
  stylePanel: $("style-panel"),
  styleRow: $("style-row"),
  useStyle: $("use-style"),
  generator: $("generator"),
  genClass: $("gen-class"),
  dimsNote: $("dims-note"),
  sliders: $("sliders"),
  genReset: $("gen-reset"),
  genImage: $("gen-image"),
};

const KEY_STORAGE = "equivae-demo-api-key";
/** Stroke width on the 280-pixel pad, and at the model's size (MNIST strokes are ~2-3 px of 28). */
const PAD_STROKE = 22;
const MODEL_STROKE = 2.6;
/** Slider range over z (the prior is N(0, I)). */
const Z_RANGE = 3;
/** At most this many /generate requests at once for the style row. */
const STYLE_CONCURRENCY = 6;

const state = {
  models: [],
  /** The selected model's /v1/models entry. */
  model: undefined,
  /** "drawing" (the strokes below) or "upload" (a File), or undefined: nothing to classify. */
  source: undefined,
  /** Strokes on the pad: arrays of [x, y] in pad pixels. */
  strokes: [],
  drawing: false,
  upload: undefined,
  /** Request counters: answers to older requests than the one shown are dropped. */
  seq: 0,
  shown: 0,
  styleSeq: 0,
  liveTimer: undefined,
  liveBusy: false,
  liveAgain: false,
  /** The style z of the current input (from /embed/equivariant). */
  styleZ: undefined,
  /** The generator's z (dz numbers) and class. */
  genZ: [],
  genBusy: false,
  genAgain: false,
};

// ---- the API

function apiKey() {
  return el.key.value.trim();
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** fetch with the API key; a problem answer becomes an ApiError with its detail. */
async function call(path, init = {}) {
  const headers = new Headers(init.headers);
  const key = apiKey();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let r;
  try {
    r = await fetch(path, { ...init, headers });
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${e.message})`);
  }
  if (!r.ok) {
    let detail = `${r.status} ${r.statusText}`;
    try {
      const p = await r.json();
      detail = p.detail || p.title || detail;
    } catch {
      // not a problem document: keep the status line
    }
    throw new ApiError(r.status, detail);
  }
  return r;
}

const modelPath = (op) => `v1/models/${encodeURIComponent(state.model.id)}/${op}`;

function say(text, error = false) {
  el.status.textContent = text;
  el.status.classList.toggle("error", error);
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401)
    say(`This server needs an API key: enter it above (${e.message}).`, true);
  else say(e.message || String(e), true);
}

function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
}

/** The multipart body of an image request: the image, its invert flag and other text fields. */
function imageForm(input, fields = {}) {
  const fd = new FormData();
  fd.append("image", input.blob, input.name);
  if (input.invert !== undefined) fd.append("invert", String(input.invert));
  for (const [k, v] of Object.entries(fields)) fd.append(k, String(v));
  return fd;
}

async function generatePng(cls, z) {
  const r = await call(modelPath("generate"), {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "image/png" },
    body: JSON.stringify({ class: cls, z, format: "png" }),
  });
  return blobToDataUrl(await r.blob());
}

// ---- models

/** The z dimensions to offer, largest KL first: z_activity's active ones, else all of them in order. */
function activeDims(m) {
  const a = m.z_activity;
  if (a && Array.isArray(a.active_dims) && a.active_dims.length > 0)
    return {
      dims: a.active_dims.map((d) => ({ dim: d, kl: a.kl_per_dim?.[d] })),
      note:
        `The ${a.active_dims.length} of ${m.dz} z dimensions that carry information ` +
        `(mean KL above ${a.threshold_nats} nats on the ${a.split} split), largest first.`,
    };
  return {
    dims: Array.from({ length: m.dz }, (_, d) => ({ dim: d })),
    note: `All ${m.dz} z dimensions (this model does not say which are active).`,
  };
}

async function loadModels() {
  el.model.disabled = true;
  let list;
  try {
    list = (await (await call("v1/models")).json()).models;
  } catch (e) {
    fail(e);
    return;
  }
  state.models = list.filter((m) => m.state === "ready");
  if (state.models.length === 0) {
    say("No model is ready yet; trying again in a few seconds.");
    setTimeout(loadModels, 3000);
    return;
  }
  const previous = state.model?.id;
  el.model.replaceChildren(
    ...state.models.map(
      (m) => new Option(`${m.id}${m.dataset && m.dataset !== m.id ? ` (${m.dataset})` : ""}`, m.id),
    ),
  );
  const chosen =
    state.models.find((m) => m.id === previous) ?? state.models.find((m) => m.default) ?? state.models[0];
  el.model.value = chosen.id;
  el.model.disabled = state.models.length < 2;
  useModel(chosen);
}

function useModel(m) {
  state.model = m;
  const { height: H, width: W, channels: C } = m.input;
  const grey = C === 1;
  el.drawArea.hidden = !grey;
  say(
    `Model ${m.id} (version ${m.version}): ${H}x${W} ${grey ? "grey" : "colour"} images, ` +
      `${m.classes.length} classes, dv = ${m.dv}, dz = ${m.dz}.` +
      (grey ? " Draw a digit, or choose, drop or paste an image." : " Choose, drop or paste an image."),
  );
  el.genClass.replaceChildren(...m.classes.map((name, i) => new Option(name, String(i))));
  const { dims, note } = activeDims(m);
  el.dimsNote.textContent = note;
  state.genZ = new Array(m.dz).fill(0);
  el.sliders.replaceChildren(
    ...dims.flatMap(({ dim, kl }) => {
      const id = `z-${dim}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = kl === undefined ? `z[${dim}]` : `z[${dim}] (KL ${kl.toFixed(2)})`;
      const input = document.createElement("input");
      Object.assign(input, { type: "range", id, min: -Z_RANGE, max: Z_RANGE, step: 0.05, value: 0 });
      input.dataset.dim = String(dim);
      const out = document.createElement("output");
      out.htmlFor = id;
      out.textContent = "0.00";
      input.addEventListener("input", () => {
        state.genZ[dim] = Number(input.value);
        out.textContent = Number(input.value).toFixed(2);
        generate();
      });
      return [label, input, out];
    }),
  );
  clearInput();
  generate();
}

// ---- the drawing pad

const pad = el.pad.getContext("2d");

function colours() {
  return el.darkOnLight.checked ? { bg: "#fff", ink: "#000" } : { bg: "#000", ink: "#fff" };
}

/** Draws strokes on a context: `map` takes pad coordinates to the context's; `width` is the line width there. */
function paint(ctx, strokes, map, width, { bg, ink }, w, h) {
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = ink;
  ctx.fillStyle = ink;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const s of strokes) {
    const pts = s.map(map);
    ctx.beginPath();
    if (pts.length === 1) {
      ctx.arc(pts[0][0], pts[0][1], width / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
    ctx.stroke();
  }
}

function redrawPad() {
  const { width: w, height: h } = el.pad;
  paint(pad, state.strokes, (p) => p, PAD_STROKE, colours(), w, h);
}

/**
 * The drawing at the model's size, as MNIST was made: the ink's bounding box scaled so that its
 * longer side fills 20/28 of the image, then shifted so that the ink's centre of mass is at the
 * image's centre. Strokes are drawn at the model's size with a fixed width (~2.6 px of 28).
 */
function modelCanvas() {
  const { height: H, width: W } = state.model.input;
  const pts = state.strokes.flat();
  if (pts.length === 0) return undefined;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const side = Math.min(H, W);
  const stroke = (MODEL_STROKE * side) / 28;
  // A short mark is not blown up to the whole box.
  const extent = Math.max(x1 - x0, y1 - y0, el.pad.width * 0.2);
  const scale = ((20 * side) / 28 - stroke) / extent;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const draw = (dx, dy) =>
    paint(
      ctx,
      state.strokes,
      (p) => [W / 2 + (p[0] - (x0 + x1) / 2) * scale + dx, H / 2 + (p[1] - (y0 + y1) / 2) * scale + dy],
      stroke,
      colours(),
      W,
      H,
    );
  draw(0, 0);
  const data = ctx.getImageData(0, 0, W, H).data;
  const dark = el.darkOnLight.checked;
  let m = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const g = data[(y * W + x) * 4];
      const ink = dark ? 255 - g : g;
      m += ink;
      mx += ink * (x + 0.5);
      my += ink * (y + 0.5);
    }
  if (m > 0) draw(W / 2 - mx / m, H / 2 - my / m);
  return canvas;
}

function canvasBlob(canvas) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the drawing cannot be encoded"))), "image/png"),
  );
}

/** What to send for the current input, or undefined when there is none. */
async function currentInput() {
  const grey = state.model.input.channels === 1;
  if (state.source === "upload")
    return { blob: state.upload, name: state.upload.name || "image", invert: grey ? "auto" : undefined };
  if (state.source !== "drawing") return undefined;
  const canvas = modelCanvas();
  if (!canvas) return undefined;
  return { blob: await canvasBlob(canvas), name: "drawing.png", invert: el.darkOnLight.checked, canvas };
}

function padPoint(e) {
  const r = el.pad.getBoundingClientRect();
  return [((e.clientX - r.left) * el.pad.width) / r.width, ((e.clientY - r.top) * el.pad.height) / r.height];
}

el.pad.addEventListener("pointerdown", (e) => {
  if (!state.model || (e.pointerType === "mouse" && e.button !== 0)) return;
  e.preventDefault();
  el.pad.setPointerCapture(e.pointerId);
  if (state.source !== "drawing") {
    state.strokes = [];
    state.source = "drawing";
    el.upload.hidden = true;
  }
  state.drawing = true;
  el.results.setAttribute("aria-busy", "true");
  state.strokes.push([padPoint(e)]);
  redrawPad();
});

el.pad.addEventListener("pointermove", (e) => {
  if (!state.drawing) return;
  const stroke = state.strokes[state.strokes.length - 1];
  for (const ev of e.getCoalescedEvents?.() ?? [e]) stroke.push(padPoint(ev));
  redrawPad();
  scheduleLive();
});

function endStroke() {
  if (!state.drawing) return;
  state.drawing = false;
  clearTimeout(state.liveTimer);
  inputChanged();
}
el.pad.addEventListener("pointerup", endStroke);
el.pad.addEventListener("pointercancel", endStroke);

el.clear.addEventListener("click", () => {
  clearInput();
  say(`Cleared. Draw a digit, or choose, drop or paste an image.`);
});

el.darkOnLight.addEventListener("change", () => {
  redrawPad();
  if (state.source === "drawing" && state.strokes.length > 0) inputChanged();
});

function clearInput() {
  state.strokes = [];
  state.source = state.model?.input.channels === 1 ? "drawing" : undefined;
  state.upload = undefined;
  state.seq++;
  state.shown = state.seq;
  state.styleSeq++;
  state.styleZ = undefined;
  el.upload.hidden = true;
  el.seen.hidden = true;
  el.seen.removeAttribute("src");
  el.seenCaption.textContent = "What the model sees appears here.";
  el.prediction.textContent = "–";
  el.topk.replaceChildren();
  el.styleRow.replaceChildren();
  el.useStyle.disabled = true;
  for (const s of [el.results, el.stylePanel]) s.setAttribute("aria-busy", "false");
  redrawPad();
}

// ---- uploads: choose, drop, paste

async function useFile(file) {
  if (!state.model) return;
  if (!file || !/^image\//.test(file.type)) {
    say(`${file ? file.type || "that file" : "nothing"} is not an image`, true);
    return;
  }
  for (const s of [el.results, el.stylePanel]) s.setAttribute("aria-busy", "true");
  state.source = "upload";
  state.upload = file;
  state.strokes = [];
  redrawPad();
  el.upload.src = await blobToDataUrl(file);
  el.upload.hidden = false;
  say(`Sent ${file.name || "the pasted image"} (${Math.round(file.size / 1024)} KiB).`);
  inputChanged();
}

el.file.addEventListener("change", () => {
  if (el.file.files[0]) useFile(el.file.files[0]);
  el.file.value = "";
});
for (const type of ["dragenter", "dragover"])
  el.drop.addEventListener(type, (e) => {
    e.preventDefault();
    el.drop.classList.add("over");
  });
el.drop.addEventListener("dragleave", () => el.drop.classList.remove("over"));
el.drop.addEventListener("drop", (e) => {
  e.preventDefault();
  el.drop.classList.remove("over");
  useFile(e.dataTransfer.files[0]);
});
// A file dropped anywhere else is not opened by the browser in place of the page.
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer?.files[0]) useFile(e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (file) {
    e.preventDefault();
    useFile(file);
  }
});

// ---- classification

/** While drawing: classify at most every 150 ms, one request at a time. */
function scheduleLive() {
  clearTimeout(state.liveTimer);
  state.liveTimer = setTimeout(() => {
    if (state.liveBusy) state.liveAgain = true;
    else classify(false);
  }, 150);
}

function inputChanged() {
  for (const s of [el.results, el.stylePanel]) s.setAttribute("aria-busy", "true");
  classify(true);
  style();
}

function describe(pre) {
  if (!pre) return "";
  const parts = [`${pre.original.width}x${pre.original.height} ${pre.source}`];
  if (pre.resized_from) parts.push("resized");
  if (pre.converted_from) parts.push(`${pre.converted_from} to grey`);
  if (pre.inverted) parts.push(pre.invert_auto ? "inverted (its background is light)" : "inverted");
  return parts.join(", ");
}

async function classify(final) {
  const my = ++state.seq;
  if (!final) state.liveBusy = true;
  try {
    const input = await currentInput();
    if (!input) return;
    if (final && input.canvas) {
      el.seen.src = input.canvas.toDataURL("image/png");
      el.seen.hidden = false;
    }
    const K = state.model.classes.length;
    const r = await call(modelPath("classify"), {
      method: "POST",
      body: imageForm(input, { top_k: Math.min(5, K) }),
    });
    const j = await r.json();
    if (my < state.shown) return;
    state.shown = my;
    showPrediction(j.predictions[0]);
    if (final) {
      if (input.canvas)
        el.seenCaption.textContent = `What the model sees: the drawing centred and scaled to ${state.model.input.width}x${state.model.input.height}${input.invert ? ", then inverted" : ""}.`;
      else el.seenCaption.textContent = `Sent as it is: ${describe(j.preprocessing[0])}.`;
    }
  } catch (e) {
    if (my >= state.shown) fail(e);
  } finally {
    if (!final) {
      state.liveBusy = false;
      if (state.liveAgain && state.drawing) {
        state.liveAgain = false;
        classify(false);
      }
    }
    if (my === state.seq && !state.drawing) el.results.setAttribute("aria-busy", "false");
  }
}

function showPrediction(pred) {
  el.prediction.textContent = pred.name;
  el.topk.replaceChildren(
    ...pred.top_k.map(({ name, p }) => {
      const li = document.createElement("li");
      const n = document.createElement("span");
      n.className = "name";
      n.textContent = name;
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("aria-hidden", "true");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(100 * p).toFixed(1)}%`;
      track.append(bar);
      const v = document.createElement("span");
      v.className = "p";
      v.textContent = `${(100 * p).toFixed(1)}%`;
      li.append(n, track, v);
      return li;
    }),
  );
}

// ---- the input's style with every class

async function style() {
  const my = ++state.styleSeq;
  el.stylePanel.setAttribute("aria-busy", "true");
  el.useStyle.disabled = true;
  try {
    const input = await currentInput();
    if (!input) return;
    const r = await call(modelPath("embed/equivariant"), { method: "POST", body: imageForm(input) });
    const z = (await r.json()).mu[0];
    const classes = state.model.classes;
    const urls = new Array(classes.length);
    let next = 0;
    const worker = async () => {
      while (next < classes.length && my === state.styleSeq) {
        const c = next++;
        urls[c] = await generatePng(c, z);
      }
    };
    await Promise.all(Array.from({ length: STYLE_CONCURRENCY }, worker));
    if (my !== state.styleSeq) return;
    state.styleZ = z;
    el.styleRow.replaceChildren(
      ...classes.map((name, c) => {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        img.src = urls[c];
        img.alt = `Class ${name} in the style of your input`;
        const cap = document.createElement("figcaption");
        cap.textContent = name;
        fig.append(img, cap);
        return fig;
      }),
    );
    el.useStyle.disabled = false;
  } catch (e) {
    if (my === state.styleSeq) fail(e);
  } finally {
    if (my === state.styleSeq) el.stylePanel.setAttribute("aria-busy", "false");
  }
}

el.useStyle.addEventListener("click", () => {
  if (!state.styleZ) return;
  state.genZ = [...state.styleZ];
  for (const input of el.sliders.querySelectorAll("input")) {
    const v = state.genZ[Number(input.dataset.dim)];
    input.value = String(v);
    input.nextElementSibling.textContent = v.toFixed(2);
  }
  const top = state.model.classes.indexOf(el.prediction.textContent);
  if (top >= 0) el.genClass.value = String(top);
  generate();
});

// ---- the generator

/** Decodes the generator's class and z; one request at a time, the latest settings last. */
async function generate() {
  if (!state.model) return;
  if (state.genBusy) {
    state.genAgain = true;
    return;
  }
  state.genBusy = true;
  el.generator.setAttribute("aria-busy", "true");
  try {
    do {
      state.genAgain = false;
      const url = await generatePng(Number(el.genClass.value), state.genZ);
      el.genImage.src = url;
      el.genImage.alt = `Generated: class ${state.model.classes[Number(el.genClass.value)]}, z = [${state.genZ.map((v) => v.toFixed(2)).join(", ")}]`;
    } while (state.genAgain);
  } catch (e) {
    fail(e);
  } finally {
    state.genBusy = false;
    el.generator.setAttribute("aria-busy", "false");
  }
}

el.genClass.addEventListener("change", generate);
el.genReset.addEventListener("click", () => {
  state.genZ.fill(0);
  for (const input of el.sliders.querySelectorAll("input")) {
    input.value = "0";
    input.nextElementSibling.textContent = "0.00";
  }
  generate();
});

// ---- settings

el.model.addEventListener("change", () => {
  const m = state.models.find((x) => x.id === el.model.value);
  if (m) useModel(m);
});

let keyTimer;
el.key.addEventListener("input", () => {
  clearTimeout(keyTimer);
  keyTimer = setTimeout(() => {
    if (apiKey()) sessionStorage.setItem(KEY_STORAGE, apiKey());
    else sessionStorage.removeItem(KEY_STORAGE);
    loadModels();
  }, 400);
});

el.key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
redrawPad();
loadModels();
