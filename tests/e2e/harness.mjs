// Shared by the end-to-end tests: the site server and Debian's Chromium (never a downloaded browser).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const fixture = (name) => path.join(ROOT, "tests/fixtures", name);

/** Serve target/site on a free loopback port with the project's own server. */
export function startServer(site = path.join(ROOT, "target/site")) {
  const bin = path.join(ROOT, "target/debug/xray-reader-serve");
  for (const p of [bin, path.join(site, "index.html"), path.join(site, "pkg/xray_reader_bg.wasm")]) {
    if (!fs.existsSync(p)) throw new Error(`${p} is missing: run scripts/build-web.sh and cargo build --bins first`);
  }
  const child = spawn(bin, [site], { env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) resolve({ url: m[0], stop: () => child.kill() });
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${out}`)));
  });
}

export async function launch(extraArgs = []) {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  if (!fs.existsSync(executablePath)) {
    throw new Error(`${executablePath} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM`);
  }
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox", "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-quic",
      // a synthetic camera, granted without a prompt: lets the tests use the viewfinder and capture
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      ...extraArgs,
    ],
  });
}
