// The first-load budget (issue 4): everything the page fetches before the first read — wasm, model,
// manifest, JS, CSS, HTML — is at most 5 MB gzip. scripts/build-web.sh measures it (the .gz and .br copies the
// server sends) into target/site/sizes.json; this checks the measurement against the files and the budget.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

const SITE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../target/site");
const BUDGET = 5_000_000;

test("the first load stays within 5 MB gzip, measured on the files the server sends", () => {
  const sizes = JSON.parse(fs.readFileSync(path.join(SITE, "sizes.json"), "utf8"));
  const files = Object.keys(sizes).filter((k) => typeof sizes[k] === "object");
  // of the two wasm builds (pkg/, pkg-relaxed/) a browser fetches one; the larger is counted
  const pkg = ["pkg", "pkg-relaxed"].reduce((a, b) => (fs.statSync(path.join(SITE, `${a}/xray_reader_bg.wasm.gz`)).size >= fs.statSync(path.join(SITE, `${b}/xray_reader_bg.wasm.gz`)).size ? a : b));
  for (const must of [`${pkg}/xray_reader_bg.wasm`, `${pkg}/xray_reader.js`, "models/xray-reader.onnx", "models/xray-reader.manifest.json", "xray-reader.js", "worker.js", "index.html", "style.css"]) {
    assert.ok(files.includes(must), `${must} is counted`);
  }
  let total = 0;
  let totalBr = 0;
  for (const f of files) {
    const file = fs.readFileSync(path.join(SITE, f));
    const gz = fs.statSync(path.join(SITE, `${f}.gz`)).size;
    assert.equal(gz, sizes[f].gzip, `${f}: sizes.json matches the .gz the server sends`);
    assert.ok(zlib.gunzipSync(fs.readFileSync(path.join(SITE, `${f}.gz`))).equals(file), `${f}.gz is that file`);
    total += gz;
    // the Brotli copy browsers get: the same file, never larger than the gzip one for the big files
    const br = fs.statSync(path.join(SITE, `${f}.br`)).size;
    assert.equal(br, sizes[f].br, `${f}: sizes.json matches the .br the server sends`);
    assert.ok(zlib.brotliDecompressSync(fs.readFileSync(path.join(SITE, `${f}.br`))).equals(file), `${f}.br is that file`);
    if (file.length > 100_000) assert.ok(br <= gz, `${f}: Brotli ${br} bytes > gzip ${gz}`);
    totalBr += br;
  }
  assert.equal(total, sizes.total_gzip);
  assert.equal(totalBr, sizes.total_br);
  assert.ok(total <= BUDGET, `first load ${(total / 1e6).toFixed(3)} MB gzip > 5 MB`);
});
