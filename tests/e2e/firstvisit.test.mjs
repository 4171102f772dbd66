// A first visit downloads the wasm and the model once: the page's worker fetches them, and the service
// worker's install revalidates (ETag → 304) instead of downloading them again for its offline cache. Of the
// two wasm builds only the one the browser runs is downloaded.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch, startServer } from "./harness.mjs";

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
