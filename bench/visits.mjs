// Cold start over many visits: `node bench/visits.mjs` (after scripts/build-web.sh and cargo build --bins).
// N fresh browser contexts (default 8); in each, a first visit, then R reloads (default 3), each measured from
// navigation start to `<xray-reader>` ready. A single first visit varies by ±15 % on a 2-core VM: judge a
// start-up change by these medians. NOSW=1 blocks the service worker (a page embedding the element without
// one). STAY: ms spent on the first visit after it is ready, before the first reload (default 1000; V8 writes
// its wasm code cache some time after a start, so a longer stay speeds later starts). Contexts are not
// persistent (no disk caches), as in the benchmark: see BENCHMARKS.md, session 21. READ=1: read the film
// fixture once on every visit after it is ready, as a user would (more of the wasm gets optimised code).
// SITES=dirA,dirB compares builds: the contexts alternate between them (A B, B A, ...), so that a machine
// getting slower or faster during the run affects both alike. LATENCY=ms (and MBPS, default 20) emulates a
// network through Chromium's DevTools protocol (page and worker requests alike), as a phone on a mobile
// network would load the app; the default is the loopback server as is.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch, startServer } from "../tests/e2e/harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const N = Number(process.env.N || 8);
const R = Number(process.env.R || 3);
const NOSW = !!process.env.NOSW;
const STAY = Number(process.env.STAY || 1000);
const READ = !!process.env.READ;
const FILM = fs.readFileSync(path.join(ROOT, "tests/fixtures/nih-pneumonia.jpg")).toString("base64");
const readOnce = (page) => READ && page.evaluate(async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  await document.querySelector("xray-reader").reader.read(new Blob([bytes]));
}, FILM);

const SITES = (process.env.SITES || process.env.SITE || path.join(ROOT, "target/site")).split(",");
const LATENCY = process.env.LATENCY ? Number(process.env.LATENCY) : null;
const MBPS = Number(process.env.MBPS || 20);
const servers = [];
for (const site of SITES) servers.push(await startServer(site));
const browser = await launch([]);
const ready = (page) => page.waitForFunction(() => document.querySelector("xray-reader").readyAt > 0, null, { timeout: 300000 });
const measure = (page) => page.evaluate(() => {
  const el = document.querySelector("xray-reader");
  const s = el.reader.startup;
  const at = (t) => Math.round(t - performance.timeOrigin);
  return { ready: Math.round(el.readyAt), workerStarted: at(s.workerStarted), wasmReady: at(s.wasmReady), graph: Math.round(s.load.graph), optimise: Math.round(s.load.optimise), compiledBy: s.wasmCompiledBy };
});
const visits = SITES.map(() => []);
try {
  for (let i = 0; i < N; i++) {
    const order = SITES.map((_, k) => k);
    if (i % 2) order.reverse();
    for (const k of order) {
      const context = await browser.newContext(NOSW ? { serviceWorkers: "block" } : {});
      const page = await context.newPage();
      if (LATENCY !== null) {
        const cdp = await context.newCDPSession(page);
        await cdp.send("Network.enable");
        await cdp.send("Network.emulateNetworkConditions", {
          offline: false, latency: LATENCY, downloadThroughput: (MBPS * 1e6) / 8, uploadThroughput: (MBPS * 1e6) / 8,
        });
      }
      await page.goto(servers[k].url);
      await ready(page);
      const row = [await measure(page)];
      await readOnce(page);
      // let the service worker finish caching the site (or give the visit the same settling time without one)
      if (!NOSW) await page.waitForFunction(() => document.documentElement.dataset.offlineReady === "true", null, { timeout: 120000 });
      await page.waitForTimeout(STAY);
      for (let r = 0; r < R; r++) {
        await page.waitForTimeout(1000);
        await page.reload();
        await ready(page);
        row.push(await measure(page));
        await readOnce(page);
      }
      visits[k].push(row);
      const tag = SITES.length > 1 ? `${SITES[k]}: ` : "";
      console.log(tag + row.map((v) => `${v.ready} ms (graph ${v.graph}, optimise ${v.optimise}, wasm by ${v.compiledBy})`).join(" | "));
      await context.close();
    }
  }
} finally {
  await browser.close();
  for (const server of servers) server.stop();
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = [["first visit", 0], ...Array.from({ length: R }, (_, r) => [`repeat ${r + 1}`, r + 1])];
const network = LATENCY !== null ? `, emulated network ${LATENCY} ms latency and ${MBPS} Mbit/s` : "";
for (const [k, site] of SITES.entries()) {
  const col = (v, key) => visits[k].map((row) => row[v][key]);
  console.log(`\n${SITES.length > 1 ? `${site}: ` : ""}${N} contexts, ${STAY} ms on the first visit${READ ? ", one read per visit" : ""}${NOSW ? ", service worker blocked" : ""}${network}: median ms`);
  console.log("| visit | ready | worker started | wasm ready | graph | optimise |\n|---|---|---|---|---|---|");
  for (const [name, v] of rows) {
    const m = (key) => median(col(v, key));
    console.log(`| ${name} | ${m("ready")} | ${m("workerStarted")} | ${m("wasmReady")} | ${m("graph")} | ${m("optimise")} |`);
  }
}
