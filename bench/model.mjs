// The model step alone, timed as in the full benchmark (bench/run.mjs), in a few minutes:
// `RUNS=30 node bench/model.mjs` after scripts/build-web.sh and `cargo build --bins`. Each row is one worker,
// this project's engine interleaved with onnxruntime-web's on the same model and input: 1 thread, then all
// cores (the page is cross-origin isolated): this project on one thread beside onnxruntime-web's threads, and
// with THREADED=64,256 (after scripts/build-threads.sh) the threaded experiment at those panel thresholds.
import { launch, startServer } from "../tests/e2e/harness.mjs";
import { ortFiles, stageBenchSite } from "./site.mjs";

const server = await startServer(stageBenchSite({ extra: ortFiles() }));
const browser = await launch([]);
try {
  const page = await (await browser.newContext()).newPage();
  const query = `only=model&runs=${process.env.RUNS || 30}&threaded=${process.env.THREADED || ""}`;
  await page.goto(new URL(`bench/bench.html?${query}`, server.url).href);
  await page.waitForFunction(() => window.__bench, null, { timeout: 900000 });
  const b = await page.evaluate(() => window.__bench);
  const row = (r) => (r.error ? r : {
    build: r.build, tractThreads: r.tractThreads, thresholds: r.thresholds, tract: +r.tractMedian.toFixed(1), probability: r.pTract,
    onnxruntimeThreads: r.threads, onnxruntime: +r.ortMedian.toFixed(1), ratio: +(r.tractMedian / r.ortMedian).toFixed(2),
  });
  for (const r of [b.oneThread, b.multiThread, ...(b.threaded || [])].filter(Boolean)) console.log(JSON.stringify(row(r)));
} finally {
  await browser.close();
  server.stop();
}
