// End-to-end on the WebGPU path: Chromium with --enable-unsafe-webgpu gives a SwiftShader adapter (a CPU
// emulation of a GPU: right for correctness, meaningless for speed). The page's reader starts WebGPU after
// "ready", checks it against the CPU engine, and reads there when asked; losing the device mid-session
// must not lose a read.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { launch, startServer, fixture } from "./harness.mjs";

let server, browser, page;

before(async () => {
  server = await startServer();
  browser = await launch(["--enable-unsafe-webgpu"]);
  page = await browser.newPage();
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  await page.goto(server.url);
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test("WebGPU starts, passes its self-check, and reads agree with the CPU engine", async () => {
  const films = ["nih-pneumonia.jpg", "kermany-normal.jpeg", "rotated-90cw-nih-normal.png"].map((f) => [f, [...fs.readFileSync(fixture(f))]]);
  const out = await page.evaluate(async (films) => {
    const { createReader } = await import("/xray-reader.js");
    const reader = await createReader({ backend: "webgpu" });
    const backend = await reader.backendInfo();
    const reads = [];
    for (const [name, bytes] of films) {
      const data = new Uint8Array(bytes);
      const gpu = await reader.read(new Blob([data]), { name, backend: "webgpu" });
      const cpu = await reader.read(new Blob([data]), { name, backend: "cpu" });
      reads.push({ name, gpu, cpu });
    }
    const engine = reader.engine;
    // the device goes away (driver reset): the next read still completes, on the CPU, and says why
    const lost = await reader._loseGpuForTest();
    const afterLoss = await reader.read(new Blob([new Uint8Array(films[0][1])]), { backend: "webgpu" });
    const backendAfter = await reader.backendInfo();
    reader.close();
    return { backend, reads, engine, lost, afterLoss, backendAfter };
  }, films);
  assert.equal(out.backend.error, null, JSON.stringify(out.backend.error));
  assert.ok(out.backend.start.adapter !== undefined);
  assert.equal(out.backend.check.passed, true, JSON.stringify(out.backend.check));
  assert.ok(out.backend.check.camCorrelation >= 0.999);
  assert.equal(out.engine, "webgpu", "backend webgpu: chosen once the self-check passed");
  for (const { name, gpu, cpu } of out.reads) {
    assert.equal(gpu.engine, "webgpu", name);
    assert.equal(cpu.engine, "cpu", name);
    assert.ok(!("engine_note" in gpu), `${name}: ${gpu.engine_note}`);
    assert.equal(gpu.accepted, cpu.accepted, name);
    assert.equal(gpu.orientation.corrected, cpu.orientation.corrected, name);
    assert.ok(gpu.timings_ms.model > 0);
    for (const [g, c] of gpu.findings.map((f, i) => [f, cpu.findings[i]])) {
      assert.ok(Math.abs(g.probability - c.probability) <= 1e-3, `${name}: ${g.probability} vs ${c.probability}`);
      assert.equal(g.positive, c.positive, name);
      // the CAM peak lands on the same spot (within 2 % of the image: a near-tie may resolve either way)
      const d = Math.hypot(g.peak[0] - c.peak[0], g.peak[1] - c.peak[1]);
      assert.ok(d <= 0.02 * Math.max(gpu.image.width, gpu.image.height), `${name}: peak ${g.peak} vs ${c.peak}`);
    }
  }
  assert.equal(out.lost, true);
  assert.equal(out.afterLoss.ok, true);
  assert.equal(out.afterLoss.engine, "cpu");
  assert.match(out.afterLoss.engine_note, /WebGPU/);
  assert.equal(out.backendAfter.info.webgpu, false);
  assert.equal(out.backendAfter.info.engine, "cpu");
});
