// End-to-end: the built site (target/site) in Debian's headless Chromium, driven by playwright-core.
// Run by scripts/test.sh after scripts/build-web.sh: `node --test tests/e2e/`.
// Screenshots for reviewers land in target/e2e/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch, startServer, fixture } from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SHOTS = path.join(ROOT, "target/e2e");
fs.mkdirSync(SHOTS, { recursive: true });

let server, browser, context, page;
const requests = [];

before(async () => {
  server = await startServer();
  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1000, height: 1400 }, locale: "en-US", acceptDownloads: true });
  context.on("request", (r) => requests.push(r.url()));
  page = await context.newPage();
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  await page.goto(server.url);
  await waitReady(page);
});

after(async () => {
  await browser?.close();
  server?.stop();
});

async function waitReady(p) {
  await p.waitForFunction(() => {
    const el = document.querySelector("xray-reader");
    return el && el.reader && el.reader.manifest && !el.hasAttribute("busy");
  }, null, { timeout: 120000 });
}

/** Read a fixture through the page's file input; resolves to the report the element shows. */
async function readThroughFileInput(p, name) {
  const before = await reads(p);
  await p.locator("xray-reader input[type=file]").setInputFiles(fixture(name));
  await nextRead(p, before);
  return p.evaluate(() => document.querySelector("xray-reader").report);
}

const reads = (p) => p.evaluate(() => document.querySelector("xray-reader").reads);

/** Wait until the element has completed a read after `count` reads. */
function nextRead(p, count) {
  return p.waitForFunction((n) => {
    const el = document.querySelector("xray-reader");
    return el.reads > n && !el.hasAttribute("busy");
  }, count, { timeout: 60000 });
}

function nativeReport(name) {
  const bin = path.join(ROOT, "target/debug/xray-reader");
  const out = execFileSync(bin, ["read", "--json", fixture(name)], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n")[0]);
}

test("a photo of a film is read through the file input: findings, heatmap, outline, same numbers as the CLI", async () => {
  const report = await readThroughFileInput(page, "photo-nih-pneumonia.jpg");
  assert.equal(report.ok, true);
  assert.equal(report.accepted, true, JSON.stringify(report.quality));
  assert.equal(report.engine, "cpu");
  const abnormal = report.findings.find((f) => f.label === "abnormal");
  assert.ok(abnormal.positive, `abnormal ${abnormal.probability}`);
  assert.ok(report.film.detected, "the film was found in the photo");

  // the wasm build gives the CLI's answer on the same bytes, in the same shape
  const native = nativeReport("photo-nih-pneumonia.jpg");
  assert.deepEqual(Object.keys(report).sort(), Object.keys(native).sort());
  assert.deepEqual(Object.keys(report.findings[0]).sort(), Object.keys(native.findings[0]).sort());
  assert.equal(report.error, null);
  assert.ok(Math.abs(native.findings[0].probability - abnormal.probability) < 1e-3,
    `wasm ${abnormal.probability} vs native ${native.findings[0].probability}`);
  for (let i = 0; i < 4; i++) {
    for (let k = 0; k < 2; k++) assert.ok(Math.abs(native.film.corners[i][k] - report.film.corners[i][k]) < 1);
  }

  // what the user sees: a positive finding with its plain-language wording, the heatmap, the disclaimer
  const text = await page.locator("xray-reader .finding").first().innerText();
  assert.match(text, /Suggests an abnormality/);
  assert.match(text, /clinician/);
  const heatAlpha = await page.evaluate(() => {
    const c = document.querySelector("xray-reader").shadowRoot.querySelector("canvas.heat");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n / (d.length / 4);
  });
  // drawn, and not flooding the view: the film is about a third of this photo, and 1.6.0's map (sharper than
  // 1.5.0's: its hot area is a median 9 % of a film against 10.5 %) colours 2 % of the view here
  assert.ok(heatAlpha > 0.01 && heatAlpha < 0.9, `heatmap covers ${heatAlpha} of the view`);
  assert.match(await page.locator("xray-reader .disclaimer").innerText(), /not a diagnosis/);

  // the opacity slider and toggle act on the heatmap layer
  await page.locator("xray-reader input[type=range]").fill("30");
  assert.equal(await page.evaluate(() => document.querySelector("xray-reader").shadowRoot.querySelector("canvas.heat").style.opacity), "0.3");
  await page.locator("xray-reader input[type=checkbox]").uncheck();
  const cleared = await page.evaluate(() => {
    const c = document.querySelector("xray-reader").shadowRoot.querySelector("canvas.heat");
    return c.getContext("2d").getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0);
  });
  assert.equal(cleared, false, "heatmap hidden when toggled off");
  await page.locator("xray-reader input[type=checkbox]").check();
  await page.locator("xray-reader input[type=range]").fill("70");
  await page.locator("xray-reader section.result").screenshot({ path: path.join(SHOTS, "result-en.png") });
});

test("dragging a film corner re-reads with the corrected outline", async () => {
  const count = await reads(page);
  const before = await page.evaluate(() => document.querySelector("xray-reader").report);
  const canvas = page.locator("xray-reader canvas[data-id=base]");
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const [cx, cy] = before.film.corners[0];
  const s = box.width / before.image.width;
  const start = [box.x + cx * s, box.y + cy * s];
  await page.mouse.move(start[0], start[1]);
  await page.mouse.down();
  await page.mouse.move(start[0] + 25, start[1] + 20, { steps: 5 });
  await page.mouse.up();
  await nextRead(page, count);
  const after = await page.evaluate(() => document.querySelector("xray-reader").report);
  assert.equal(after.film.from_caller, true);
  assert.ok(Math.abs(after.film.corners[0][0] - (cx + 25 / s)) < 3, `corner x ${after.film.corners[0][0]}`);
  assert.ok(Math.abs(after.film.corners[0][1] - (cy + 20 / s)) < 3, `corner y ${after.film.corners[0][1]}`);
  assert.match(await page.locator("xray-reader [data-id=film-info]").innerText(), /corners you set/);
});

test("switching language translates the page, the wording and the checks", async () => {
  await page.selectOption("#lang", "fr");
  await page.waitForFunction(() => document.querySelector("xray-reader").language === "fr");
  await page.waitForFunction(() => document.querySelector("h1").textContent.includes("radiographies"));
  assert.match(await page.locator("xray-reader [data-id=result-heading]").innerText(), /Résultat/);
  assert.match(await page.locator("xray-reader .finding p").first().innerText(), /Évoque une anomalie .*seuil/);
  await page.locator("xray-reader section.result").screenshot({ path: path.join(SHOTS, "result-fr.png") });
  for (const [code, word] of [["zh", "结果"], ["es", "Resultado"], ["pt", "Resultado"], ["en", "Result"]]) {
    await page.selectOption("#lang", code);
    await page.waitForFunction((c) => document.querySelector("xray-reader").language === c, code);
    await page.waitForFunction((w) => document.querySelector("xray-reader").shadowRoot.querySelector("[data-id=result-heading]").textContent.includes(w), word);
  }
  // the choice persists across a reload
  await page.selectOption("#lang", "es");
  await page.reload();
  await waitReady(page);
  assert.equal(await page.evaluate(() => document.documentElement.lang), "es");
  await page.selectOption("#lang", "en");
});

test("drag and drop and paste both read the image; a read makes no network request", async () => {
  const b64 = fs.readFileSync(fixture("nih-normal.jpg")).toString("base64");
  const dt = await page.evaluateHandle((data) => {
    const t = new DataTransfer();
    t.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], "dropped.jpg", { type: "image/jpeg" }));
    return t;
  }, b64);
  let count = await reads(page);
  const requestsBefore = requests.length;
  await page.dispatchEvent("xray-reader .drop", "drop", { dataTransfer: dt });
  await nextRead(page, count);
  assert.equal((await page.evaluate(() => document.querySelector("xray-reader").report)).file, "dropped.jpg");
  assert.equal(requests.length, requestsBefore, "reading made no request at all");
  count = await reads(page);
  await page.evaluate((data) => {
    const t = new DataTransfer();
    t.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], "pasted.jpg", { type: "image/jpeg" }));
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: t }));
  }, b64);
  await nextRead(page, count);
  const pasted = await page.evaluate(() => document.querySelector("xray-reader").report);
  assert.equal(pasted.file, "pasted.jpg");
  assert.equal(pasted.findings[0].positive, false);
});

test("usable on a 360 px wide phone: no sideways scrolling, controls reachable", async () => {
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 360, height: 740 });
  await phone.goto(server.url);
  await waitReady(phone);
  await phone.locator("xray-reader input[type=file]").setInputFiles(fixture("photo-nih-normal.jpg"));
  await phone.waitForFunction(() => document.querySelector("xray-reader").reads > 0 && !document.querySelector("xray-reader").hasAttribute("busy"), null, { timeout: 60000 });
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= 360), "page fits 360 px");
  const button = await phone.locator("xray-reader [data-id=save-json]").boundingBox();
  assert.ok(button.x >= 0 && button.x + button.width <= 360 && button.height >= 40, JSON.stringify(button));
  await phone.screenshot({ path: path.join(SHOTS, "phone-360.png"), fullPage: true });
  await phone.close();
});

test("a non-X-ray photo is refused with a reason; a damaged file gives a typed error and the reader goes on", async () => {
  const report = await readThroughFileInput(page, "not-xray-astronaut.jpg");
  assert.equal(report.accepted, false);
  const refusals = report.quality.filter((q) => q.severity === "refuse").map((q) => q.code);
  assert.ok(refusals.includes("not_chest_xray") || refusals.includes("colour_photo"), refusals.join());
  assert.match(await page.locator("xray-reader [data-id=refused]").innerText(), /Not read/);
  // a screenshot: refused as a page, and the page says so in the user's words
  const screen = await readThroughFileInput(page, "not-xray-screenshot.png");
  assert.equal(screen.accepted, false);
  assert.ok(screen.quality.some((q) => q.code === "page_or_screen" && q.severity === "refuse"), JSON.stringify(screen.quality));
  assert.match(await page.locator("xray-reader li[data-code=page_or_screen]").innerText(), /Refused: This looks like a page or a screenshot/);

  const truncated = fs.readFileSync(fixture("nih-normal.jpg")).subarray(0, 5000);
  const count = await reads(page);
  await page.locator("xray-reader input[type=file]").setInputFiles({ name: "broken.jpg", mimeType: "image/jpeg", buffer: truncated });
  await nextRead(page, count);
  assert.equal(await page.locator("xray-reader [data-id=error]").isVisible(), true);
  assert.match(await page.locator("xray-reader [data-id=error]").innerText(), /damaged or incomplete/);
  const kind = await page.evaluate(() => document.querySelector("xray-reader").shadowRoot.querySelector("[data-id=error]").dataset.kind);
  assert.equal(kind, "corrupt");
  const again = await readThroughFileInput(page, "kermany-normal.jpeg");
  assert.equal(again.accepted, true);
  assert.equal(again.findings[0].positive, false);
});

test("a film whose edges are not found is read at the photo's centre, and the page says so", async () => {
  const report = await readThroughFileInput(page, "second-look/held-up-nih-pneumonia.jpg");
  assert.equal(report.accepted, true, JSON.stringify(report.quality));
  assert.equal(report.quality[0].code, "second_look");
  assert.equal(report.findings[0].positive, true);
  const warning = page.locator("xray-reader li[data-code=second_look]");
  assert.match(await warning.innerText(), /Warning: .*centre of the photo was read/);
  assert.match(await page.locator("xray-reader [data-id=film-info]").innerText(), /centre of the photo was read/);
});

test("the JS API: createReader/read on Blob, ArrayBuffer and ImageData; a 12 MP photo is downscaled first and comes back with its display layers; errors have kinds", async () => {
  const photo = fs.readFileSync(fixture("photo-nih-pneumonia.jpg")).toString("base64");
  const result = await page.evaluate(async (b64) => {
    const { createReader } = await import("/xray-reader.js");
    const reader = await createReader();
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const fromBuffer = await reader.read(bytes.buffer.slice(0));
    const fromBlob = await reader.read(new Blob([bytes]), { name: "photo.jpg" });
    const bitmap = await createImageBitmap(new Blob([bytes]));
    const c = new OffscreenCanvas(bitmap.width, bitmap.height);
    c.getContext("2d").drawImage(bitmap, 0, 0);
    const fromPixels = await reader.read(c.getContext("2d").getImageData(0, 0, bitmap.width, bitmap.height));
    // the same film photographed at 12 MP: 4000x3000 JPEG
    const big = new OffscreenCanvas(4000, 3000);
    const g = big.getContext("2d");
    g.fillStyle = "#202020";
    g.fillRect(0, 0, 4000, 3000);
    const scale = 2800 / bitmap.height;
    g.drawImage(bitmap, 600, 100, bitmap.width * scale, bitmap.height * scale);
    const bigBlob = await big.convertToBlob({ type: "image/jpeg", quality: 0.9 });
    // read with the display layers, as the element does
    const bigView = await reader.readWithView(bigBlob);
    const fromBig = bigView.report;
    const view = {
      image: [bigView.image.width, bigView.image.height],
      heatmap: bigView.heatmap && [bigView.heatmap.width, bigView.heatmap.height],
      heatAlpha: bigView.heatmap && bigView.heatmap.data.some((v, i) => i % 4 === 3 && v > 0),
      stages: bigView.stages,
    };
    const errors = {};
    for (const [name, input, opts] of [
      ["empty", new ArrayBuffer(0)],
      ["random", crypto.getRandomValues(new Uint8Array(4096)).buffer],
      ["pdf", new TextEncoder().encode("%PDF-1.7\n1 0 obj <<>> endobj\n").buffer],
      ["not_input", 42],
      ["bad_backend", bytes.buffer.slice(0), { backend: "quantum" }],
      ["bad_corners", bytes.buffer.slice(0), { corners: [[0, 0], [1, 0], [1, 1], [0, 1]] }],
    ]) {
      try {
        await reader.read(input, opts);
        errors[name] = "no error";
      } catch (e) {
        errors[name] = e.kind;
      }
    }
    // this browser has no WebGPU (no --enable-unsafe-webgpu): asking for it still reads, on the CPU, and says why
    const forcedWebgpu = await reader.read(new Blob([bytes]), { backend: "webgpu" });
    const afterErrors = await reader.read(new Blob([bytes]));
    reader.close();
    return { fromBuffer, fromBlob, fromPixels, fromBig, view, errors, forcedWebgpu, afterErrors, size: [bitmap.width, bitmap.height] };
  }, photo);
  const p = (r) => r.findings[0].probability;
  assert.equal(result.fromBlob.file, "photo.jpg");
  assert.equal(p(result.fromBuffer), p(result.fromBlob));
  assert.ok(Math.abs(p(result.fromPixels) - p(result.fromBlob)) < 0.02, `pixels ${p(result.fromPixels)} vs bytes ${p(result.fromBlob)}`);
  assert.deepEqual([result.fromBig.image.width, result.fromBig.image.height], [4000, 3000], "report speaks in the photo's own pixels");
  assert.ok(result.fromBig.findings[0].positive, `12 MP photo: ${p(result.fromBig)}`);
  // what a host draws: the photo as read at 2048 px, the heatmap layer over it at a quarter of that, and
  // where the read's time went outside wasm
  assert.deepEqual(result.view.image, [2048, 1536]);
  assert.deepEqual(result.view.heatmap, [512, 384]);
  assert.ok(result.view.heatAlpha, "the positive read's heatmap layer is not empty");
  const st = result.view.stages;
  for (const k of ["payload", "decode", "downscale", "read", "image", "heatmap", "worker", "total"]) assert.equal(typeof st[k], "number", k);
  assert.ok(st.decode > 0 && st.downscale > 0 && st.read > 0, JSON.stringify(st));
  assert.ok(st.total >= st.worker && st.worker >= st.decode + st.downscale + st.read, JSON.stringify(st));
  // the film sits at x 600.., y 100..2900 in the big photo: the outline must be found there, in those pixels
  const xs = result.fromBig.film.corners.map((c) => c[0]);
  const ys = result.fromBig.film.corners.map((c) => c[1]);
  assert.ok(Math.min(...xs) >= 550 && Math.max(...ys) <= 2950 && Math.min(...ys) >= 50, JSON.stringify(result.fromBig.film.corners));
  assert.deepEqual(result.errors, {
    empty: "empty",
    random: "unsupported_format",
    pdf: "unsupported_format",
    not_input: "invalid_input",
    bad_backend: "invalid_options",
    bad_corners: "invalid_corners",
  });
  assert.equal(result.afterErrors.ok, true);
  assert.equal(result.forcedWebgpu.engine, "cpu");
  assert.match(result.forcedWebgpu.engine_note, /WebGPU is not available/);
  assert.equal(p(result.forcedWebgpu), p(result.fromBlob));
});

test("small files go to Rust undecoded; a format only the browser decodes (AVIF) is read through the browser, like the JPEG it was made from", async () => {
  const b64 = (name) => fs.readFileSync(fixture(name)).toString("base64");
  const result = await page.evaluate(async ([jpeg, avif]) => {
    const { createReader } = await import("/xray-reader.js");
    const reader = await createReader({ backend: "cpu" });
    const blob = (s, type) => new Blob([Uint8Array.from(atob(s), (c) => c.charCodeAt(0))], { type });
    const out = {};
    for (const [name, input] of [["jpeg", blob(jpeg, "image/jpeg")], ["avif", blob(avif, "image/avif")]]) {
      const { report, image, stages } = await reader.readWithView(input);
      out[name] = { ok: report.ok, accepted: report.accepted, probability: report.findings[0].probability,
        positive: report.findings[0].positive, size: [image.width, image.height], decode: stages.decode };
    }
    reader.close();
    return out;
  }, [b64("nih-pneumonia.jpg"), b64("avif-nih-pneumonia.avif")]);
  assert.equal(result.jpeg.decode, 0, "a 512 px JPEG is decoded by Rust only");
  assert.ok(result.avif.ok && result.avif.accepted, JSON.stringify(result.avif));
  assert.ok(result.avif.decode > 0, "the AVIF was decoded by the browser");
  assert.deepEqual(result.avif.size, [512, 512]);
  assert.equal(result.avif.positive, result.jpeg.positive);
  assert.ok(Math.abs(result.avif.probability - result.jpeg.probability) < 0.05, JSON.stringify(result));
});

test("two wasm builds: Chromium runs the relaxed-SIMD one, the SIMD128 one on request, and both read alike", async () => {
  const film = fs.readFileSync(fixture("nih-pneumonia.jpg")).toString("base64");
  const result = await page.evaluate(async (b64) => {
    const { createReader } = await import("/xray-reader.js");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const out = {};
    for (const wasmBuild of ["auto", "simd128"]) {
      const reader = await createReader({ backend: "cpu", wasmBuild });
      const report = await reader.read(bytes.buffer.slice(0));
      out[wasmBuild] = { build: reader.startup.wasmBuild, probability: report.findings[0].probability, peak: report.findings[0].peak };
      reader.close();
    }
    let refused = null;
    try {
      await createReader({ wasmBuild: "sse" });
    } catch (e) {
      refused = e.kind;
    }
    return { ...out, refused };
  }, film);
  assert.equal(result.auto.build, "pkg-relaxed", "Chromium has relaxed SIMD: the page runs that build");
  assert.equal(result.simd128.build, "pkg");
  assert.ok(Math.abs(result.auto.probability - result.simd128.probability) < 1e-4, JSON.stringify(result));
  assert.deepEqual(result.auto.peak, result.simd128.peak);
  assert.equal(result.refused, "invalid_options");
});

test("a Rust panic inside the worker is reported as kind internal and the reader recovers", async () => {
  const out = await page.evaluate(async () => {
    const el = document.querySelector("xray-reader");
    let kind = null;
    try {
      await el.reader._panicForTest();
    } catch (e) {
      kind = e.kind;
    }
    return { kind, restarts: el.reader.restarts };
  });
  assert.deepEqual(out, { kind: "internal", restarts: 1 });
  const report = await readThroughFileInput(page, "kermany-pneumonia.jpeg");
  assert.equal(report.findings[0].positive, true);
  // the same inside an async task (where reads run since the WebGPU engine came): no read may hang
  const again = await page.evaluate(async () => {
    const el = document.querySelector("xray-reader");
    let kind = null;
    try {
      await el.reader._panicForTest(true);
    } catch (e) {
      kind = e.kind;
    }
    return { kind, restarts: el.reader.restarts };
  });
  assert.deepEqual(again, { kind: "internal", restarts: 2 });
  const after = await readThroughFileInput(page, "kermany-pneumonia.jpeg");
  assert.equal(after.findings[0].positive, true);
});

test("exports: the JSON report and the annotated PNG are saved locally; the print view hides the controls", async () => {
  const report = await readThroughFileInput(page, "nih-pneumonia.jpg");
  const [json] = await Promise.all([page.waitForEvent("download"), page.locator("xray-reader [data-id=save-json]").click()]);
  assert.match(json.suggestedFilename(), /nih-pneumonia-report\.json$/);
  assert.match(json.url(), /^blob:/);
  const saved = JSON.parse(fs.readFileSync(await json.path(), "utf8"));
  assert.deepEqual(saved, report);
  const [png] = await Promise.all([page.waitForEvent("download"), page.locator("xray-reader [data-id=save-png]").click()]);
  assert.match(png.suggestedFilename(), /nih-pneumonia-annotated\.png$/);
  const bytes = fs.readFileSync(await png.path());
  assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]);
  assert.ok(bytes.length > 20000, `annotated PNG ${bytes.length} bytes`);
  await page.emulateMedia({ media: "print" });
  assert.equal(await page.locator("xray-reader .drop").isVisible(), false);
  assert.equal(await page.locator("xray-reader .actions").isVisible(), false);
  assert.equal(await page.locator("xray-reader .finding").first().isVisible(), true);
  await page.emulateMedia({ media: "screen" });
});

test("the camera: viewfinder from the rear camera, capture, and a non-film scene is refused with reasons", async () => {
  await page.locator("xray-reader [data-id=camera]").click();
  await page.waitForFunction(() => {
    const v = document.querySelector("xray-reader").shadowRoot.querySelector("video");
    return v.videoWidth > 0 && !v.paused;
  }, null, { timeout: 30000 });
  assert.equal(await page.locator("xray-reader [data-id=camera-panel]").isVisible(), true);
  const count = await reads(page);
  await page.locator("xray-reader [data-id=capture]").click();
  await nextRead(page, count);
  const report = await page.evaluate(() => document.querySelector("xray-reader").report);
  // Chromium's synthetic camera shows a coloured test pattern: it must be refused, never scored
  assert.equal(report.accepted, false, JSON.stringify(report.quality));
  assert.match(report.file, /^camera-\d+\.jpg$/);
  assert.equal(await page.locator("xray-reader [data-id=camera-panel]").isVisible(), false, "camera closed after capture");
  assert.ok(await page.locator("xray-reader .sev-refuse").count() >= 1);
});

test("offline after the first visit: the service worker serves everything, and a read still works", async () => {
  await page.waitForFunction(() => document.documentElement.dataset.offlineReady === "true", null, { timeout: 60000 });
  await context.setOffline(true);
  await page.reload();
  await waitReady(page);
  const report = await readThroughFileInput(page, "photo-kermany-normal.jpg");
  assert.equal(report.ok, true);
  assert.equal(report.findings[0].positive, false);
  await page.screenshot({ path: path.join(SHOTS, "offline-page.png"), fullPage: true });
  await context.setOffline(false);
});

test("no request ever left the origin", () => {
  const origin = new URL(server.url).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith("blob:") && !u.startsWith("data:"));
  assert.deepEqual(foreign, []);
  assert.ok(requests.length > 10, `saw ${requests.length} requests`);
});
