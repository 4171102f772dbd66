// One read, timed on its own: `INPUT=photo|film RUNS=9 node bench/read.mjs` (after scripts/build-web.sh and
// cargo build --bins). photo: the 12 MP JPEG of the full benchmark; film: the 512 px film file it is drawn
// from. Prints the median wall time and the median stages (page and wasm) of RUNS reads on the CPU engine.
import { launch, startServer } from "../tests/e2e/harness.mjs";
import { stageBenchSite } from "./site.mjs";

const server = await startServer(stageBenchSite(process.env.SITE ? { from: process.env.SITE } : {}));
const browser = await launch([]);
try {
  const page = await (await browser.newContext()).newPage();
  const query = `only=photo&input=${process.env.INPUT || "photo"}&runs=${process.env.RUNS || 9}`;
  await page.goto(new URL(`bench/bench.html?${query}`, server.url).href);
  await page.waitForFunction(() => window.__bench, null, { timeout: 900000 });
  const e = (await page.evaluate(() => window.__bench)).endToEnd;
  const round = (k, v) => (typeof v === "number" ? Math.round(v * 10) / 10 : v);
  console.log(JSON.stringify({ input: process.env.INPUT || "photo", wall: e.wallMedian, walls: e.walls, page: e.pageStages, wasm: e.wasmStages }, round));
} finally {
  await browser.close();
  server.stop();
}
