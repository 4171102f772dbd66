// Quick model-step timing of the built wasm in Node (V8, no browser), for A/B work on the engine between full
// `./scripts/bench.sh` runs: `node --experimental-wasm-relaxed-simd bench/node.mjs [site dir] [runs]`
// (after ./scripts/build-web.sh; Node 20 needs the flag for the relaxed-SIMD build). Prints, per wasm build,
// the median and minimum of `runs` model steps and the per-op-kind profile's matmul share.
import { readFileSync, existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const site = path.resolve(process.argv[2] || "target/site");
const runs = Number(process.argv[3] || 30);
const input = new Float32Array(224 * 224).map((_, i) => 0.5 + 0.4 * Math.sin((i % 224) / 17) * Math.cos(Math.floor(i / 224) / 23));
const bytes = (f) => new Uint8Array(readFileSync(path.join(site, f)));

for (const build of ["pkg", "pkg-relaxed"]) {
  if (!existsSync(path.join(site, build))) continue;
  let glue;
  try {
    glue = await import(pathToFileURL(path.join(site, build, "xray_reader.js")).href);
    await glue.default({ module_or_path: bytes(`${build}/xray_reader_bg.wasm`) });
  } catch (e) {
    console.log(`${build}: not runnable here (${e.message.split("\n")[0]})`);
    continue;
  }
  const reader = glue.Reader.fromBytes(bytes("models/xray-reader.onnx"), bytes("models/xray-reader.manifest.json"));
  const ms = [];
  let p;
  for (let i = 0; i < runs + 5; i++) {
    const [t, prob] = reader.modelStep(input);
    if (i >= 5) ms.push(t);
    p = prob;
  }
  ms.sort((a, b) => a - b);
  const prof = reader.modelProfile(input, 5);
  const total = prof.reduce((a, r) => a + r.ms, 0);
  const matmul = prof.filter((r) => r.op.startsWith("OptMatMul ")).reduce((a, r) => a + r.ms, 0);
  console.log(`${build}: model step median ${ms[ms.length >> 1].toFixed(1)} ms, min ${ms[0].toFixed(1)} ms (${runs} runs); ` +
    `probability ${p.toFixed(5)}; op by op ${total.toFixed(1)} ms, of which matmul ${matmul.toFixed(1)} ms`);
}
