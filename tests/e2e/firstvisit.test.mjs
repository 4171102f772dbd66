// A first visit downloads the wasm and the model once: the page's worker fetches them, and the service
// worker's install revalidates (ETag → 304) instead of downloading them again for its offline cache. Of the
// two wasm builds only the one the browser runs is downloaded.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fixture, launch, startServer } from "./harness.mjs";

const SITE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../target/site");

test("a first visit downloads the wasm and the model once, and is offline-ready", async () => {
  const server = await startServer();
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const seen = [];
    context.on("requestfinished", async (request) => {
      const response = await request.response();
      if (!response) return;
      const sizes = await request.sizes();
      const encoding = (await response.allHeaders())["content-encoding"] || null;
      seen.push({ url: request.url(), status: response.status(), body: sizes.responseBodySize, sw: response.fromServiceWorker(), encoding });
    });
    const page = await context.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === "true", null, { timeout: 120000 });
    await page.waitForTimeout(500);
    // Chromium has relaxed SIMD: it runs (and caches) pkg-relaxed/ and never fetches the SIMD128 build
    assert.equal(seen.filter((r) => r.url.includes("/pkg/")).length, 0, "the SIMD128 build is not fetched");
    for (const file of ["models/xray-reader.onnx", "pkg-relaxed/xray_reader_bg.wasm"]) {
      const hits = seen.filter((r) => r.url.endsWith(file));
      // (the service worker's revalidation shows as a 200 from the HTTP cache with no body on the wire)
      const downloads = hits.filter((r) => r.status === 200 && !r.sw && r.body > 0);
      const downloaded = downloads.reduce((a, r) => a + r.body, 0);
      // Chromium accepts Brotli, so the server sends the smallest copy, the .br
      assert.deepEqual(downloads.map((r) => r.encoding), ["br"], `${file}: one download, in Brotli`);
      const once = fs.statSync(path.join(SITE, `${file}.br`)).size;
      assert.ok(hits.length >= 1, `${file} was fetched`);
      assert.equal(downloaded, once, `${file}: ${downloaded} bytes downloaded, one Brotli copy is ${once}`);
    }
    await context.close();
  } finally {
    await browser.close();
    server.stop();
  }
});

/** Who compiled the wasm for the element's current start: "page" or "worker". */
const wasmCompiledBy = (page) => page.evaluate(() => document.querySelector("xray-reader").reader.startup.wasmCompiledBy);

/** The first finding of a read of the NIH film fixture through the element's reader. */
const readFinding = (page) => page.evaluate(async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const report = await document.querySelector("xray-reader").reader.read(new Blob([bytes]));
  return report.findings[0];
}, fs.readFileSync(fixture("nih-pneumonia.jpg")).toString("base64"));

// What the element shows while it starts, polled until it is ready: [{ stage, fraction, text }], changes only.
async function startStages(page) {
  const seen = [];
  for (;;) {
    const s = await page.evaluate(() => {
      const el = document.querySelector("xray-reader");
      const status = el && el.shadowRoot && el.shadowRoot.querySelector("[data-id=status]");
      if (!status) return null;
      const d = el.state.stageDetail;
      return { stage: el.state.stage, fraction: d ? d.fraction : null, text: status.textContent, ready: el.readyAt > 0 };
    });
    if (s) {
      const last = seen[seen.length - 1];
      if (!last || last.stage !== s.stage || last.fraction !== s.fraction) seen.push(s);
      if (s.ready) return seen;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test("a first visit over a slow connection shows how much of the model has downloaded; the offline copy starts without it", async () => {
  const server = await startServer();
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    // 200 ms round trips (a mobile network: the worker counts when the first byte takes ≥ 150 ms) and ~3.8 MB
    // at 20 Mbit/s, about two seconds of downloading with progress every 250 ms
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 200, downloadThroughput: 2.5e6, uploadThroughput: 2.5e6 });
    await page.goto(server.url);
    const first = await startStages(page);
    const downloading = first.filter((s) => s.stage === "downloading");
    assert.ok(downloading.length >= 2, `progress shown while downloading: ${JSON.stringify(first)}`);
    const fractions = downloading.map((s) => s.fraction);
    assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), "the share only grows");
    assert.ok(fractions.every((f) => f > 0 && f <= 1) && fractions[fractions.length - 1] > 0.5, `${fractions}`);
    assert.ok(downloading.every((s) => /model/.test(s.text)), downloading[0].text);
    for (const s of downloading) assert.match(s.text, new RegExp(`: ${Math.round(s.fraction * 100)} %`));
    assert.equal(first[first.length - 1].stage, "ready");
    assert.equal(await wasmCompiledBy(page), "worker", "a first visit compiles the wasm in the reading worker");

    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.waitForFunction(() => document.documentElement.dataset.offlineReady === "true", null, { timeout: 120000 });
    await page.reload();
    const again = await startStages(page);
    assert.ok(!again.some((s) => s.stage === "downloading"), `served by the offline copy: ${JSON.stringify(again)}`);
    // a start from the offline copy compiles the wasm on the page (V8's code cache) and posts it to the worker
    assert.equal(await wasmCompiledBy(page), "page");
    const fromPage = await readFinding(page);
    // a page that cannot compile wasm itself (a Content-Security-Policy without 'wasm-unsafe-eval' rejects the
    // compile) still starts: its worker compiles, and reads the same
    await page.addInitScript(() => {
      WebAssembly.compileStreaming = () => Promise.reject(new WebAssembly.CompileError("refused by the page's policy"));
    });
    await page.reload();
    await startStages(page);
    assert.equal(await wasmCompiledBy(page), "worker");
    assert.deepEqual(await readFinding(page), fromPage);
    await context.close();
  } finally {
    await browser.close();
    server.stop();
  }
});

test("a host page without a service worker compiles the wasm on the page from its second start", async () => {
  const server = await startServer();
  const browser = await launch();
  try {
    const context = await browser.newContext({ serviceWorkers: "block" });
    const page = await context.newPage();
    await page.goto(server.url);
    await startStages(page);
    assert.equal(await wasmCompiledBy(page), "worker");
    const first = await readFinding(page);
    await page.reload();
    await startStages(page);
    // the wasm is in the HTTP cache, and V8 reuses machine code cached for a compile on the page
    assert.equal(await wasmCompiledBy(page), "page");
    assert.deepEqual(await readFinding(page), first);
    await context.close();
  } finally {
    await browser.close();
    server.stop();
  }
});
