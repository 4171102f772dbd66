// Hostile and broken inputs through the JS API in the browser (issue 7): every malformed file gives a typed
// error or a refusal, never a crash of the wasm module; 500 consecutive reads keep memory flat.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import zlib from "node:zlib";
import { launch, startServer, fixture } from "./harness.mjs";

let server, browser, page;

before(async () => {
  server = await startServer();
  browser = await launch();
  page = await (await browser.newContext()).newPage();
  await page.goto(new URL("example/embed.html", server.url).href);
  await page.evaluate(async () => {
    const { createReader } = await import("/xray-reader.js");
    window.testReader = await createReader();
  });
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
/** A grey PNG of the declared size; `rows` real rows of pixel data (fewer than declared = truncated). */
function png(width, height, rows = height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc(Math.min(rows, height) * (width + 1), 128);
  for (let y = 0; y < Math.min(rows, height); y++) raw[y * (width + 1)] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The malformed corpus: at least 40 files, built here from the committed fixtures. */
function corpus() {
  const files = [];
  const jpeg = fs.readFileSync(fixture("nih-normal.jpg"));
  const prog = fs.readFileSync(fixture("progressive-nih-pneumonia.jpg"));
  const pngFixture = fs.readFileSync(fixture("inverted-nih-normal.png"));
  for (const [name, buf] of [["jpeg", jpeg], ["progressive", prog], ["png", pngFixture]]) {
    for (const f of [0.02, 0.1, 0.3, 0.5, 0.8, 0.97]) files.push([`${name}-truncated-${f}`, buf.subarray(0, Math.floor(buf.length * f))]);
    for (const seed of [1, 2, 3, 4]) {
      const b = Buffer.from(buf);
      let x = seed * 2654435761;
      for (let i = 0; i < 40; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        b[(x % (b.length - 20)) + 20] ^= 0xff;
      }
      files.push([`${name}-bitflips-${seed}`, b]);
    }
    // header intact, body zeroed
    const z = Buffer.from(buf);
    z.fill(0, Math.min(600, z.length));
    files.push([`${name}-zeroed-body`, z]);
  }
  files.push(["zero-bytes", Buffer.alloc(0)]);
  files.push(["one-byte", Buffer.from([0xff])]);
  files.push(["random", Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919 + 13) % 251))]);
  files.push(["pdf", Buffer.from("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF")]);
  files.push(["html", Buffer.from("<!doctype html><html><body><img src=x onerror=alert(1)></body></html>")]);
  files.push(["svg", Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512"><rect width="512" height="512"/></svg>')]);
  files.push(["dicom", Buffer.concat([Buffer.alloc(128), Buffer.from("DICM"), Buffer.alloc(256, 1)])]);
  files.push(["png-declared-100000x100000", png(100000, 100000, 2)]);
  files.push(["png-1x1", png(1, 1)]);
  files.push(["png-20000x10", png(20000, 10)]);
  files.push(["png-declared-rows-missing", png(512, 512, 100)]);
  files.push(["gif-header-only", Buffer.from("GIF89a\x00\x10\x00\x10\x80\x00\x00", "latin1")]);
  files.push(["webp-header-only", Buffer.concat([Buffer.from("RIFF"), Buffer.from([0xff, 0xff, 0xff, 0x0f]), Buffer.from("WEBPVP8 ")])]);
  files.push(["tiff-header-only", Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0xff, 0xff])]);
  files.push(["bmp-huge-declared", Buffer.concat([Buffer.from("BM"), Buffer.alloc(12), Buffer.from([40, 0, 0, 0, 0xa0, 0x86, 0x01, 0x00, 0xa0, 0x86, 0x01, 0x00, 1, 0, 24, 0]), Buffer.alloc(24)])]);
  return files;
}

const KINDS = ["empty", "unsupported_format", "corrupt", "too_large", "too_small", "invalid_corners"];

test("every malformed file gives a typed error or a report with reasons, and the module survives", async () => {
  const files = corpus();
  assert.ok(files.length >= 40, `${files.length} files`);
  const outcomes = await page.evaluate(async (list) => {
    const out = {};
    for (const [name, b64] of list) {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      try {
        const r = await window.testReader.read(bytes.buffer);
        out[name] = { report: true, accepted: r.accepted, refusals: r.quality.filter((q) => q.severity === "refuse").map((q) => q.code) };
      } catch (e) {
        out[name] = { kind: e.kind, message: e.message };
      }
    }
    return { out, restarts: window.testReader.restarts };
  }, files.map(([n, b]) => [n, b.toString("base64")]));
  assert.equal(outcomes.restarts, 0, "no panic restarted the module");
  for (const [name, o] of Object.entries(outcomes.out)) {
    if (o.report) continue; // a damaged-but-decodable file read as an image (with its quality verdict)
    assert.ok(KINDS.includes(o.kind), `${name}: ${o.kind} ${o.message}`);
    assert.ok(o.message.length > 10, `${name}: message ${o.message}`);
  }
  const errors = Object.values(outcomes.out).filter((o) => !o.report).length;
  assert.ok(errors >= 25, `${errors} of ${files.length} refused as unreadable`);
  for (const name of ["zero-bytes", "pdf", "html", "svg", "dicom", "png-declared-100000x100000", "png-1x1", "png-20000x10"]) {
    assert.ok(!outcomes.out[name].report, `${name} must not be read as an image`);
  }
  // and it still reads a real film afterwards
  const film = fs.readFileSync(fixture("nih-pneumonia.jpg")).toString("base64");
  const after = await page.evaluate(async (b64) => {
    const r = await window.testReader.read(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
    return { accepted: r.accepted, positive: r.findings[0].positive };
  }, film);
  assert.deepEqual(after, { accepted: true, positive: true });
});

test("500 consecutive reads keep the reader's memory flat", async () => {
  const film = fs.readFileSync(fixture("kermany-normal.jpeg")).toString("base64");
  const result = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const r = window.testReader;
    const samples = [];
    let last = null;
    for (let i = 1; i <= 500; i++) {
      last = await r.read(bytes.buffer.slice(0));
      if (i === 25 || i % 100 === 0) samples.push([i, (await r.stats()).wasmMemoryBytes, performance.memory ? performance.memory.usedJSHeapSize : 0]);
    }
    return { samples, positive: last.findings[0].positive };
  }, film);
  console.log("memory samples [read, wasm bytes, JS heap bytes]:", JSON.stringify(result.samples));
  assert.equal(result.positive, false);
  const base = result.samples[0][1];
  const end = result.samples[result.samples.length - 1][1];
  assert.ok(end - base <= 4 * 1024 * 1024, `wasm memory grew ${(end - base) / 1048576} MB from read 25 to read 500`);
  const heap0 = result.samples[0][2];
  const heap1 = result.samples[result.samples.length - 1][2];
  if (heap0 > 0) assert.ok(heap1 - heap0 < 32 * 1024 * 1024, `page JS heap grew ${(heap1 - heap0) / 1048576} MB`);
});
