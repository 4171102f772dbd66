// 2. the API: createReader() -> reader.read(Blob | ArrayBuffer | ImageData, options) -> Report
import { createReader } from "../xray-reader.js";

const out = document.getElementById("out");
const element = document.getElementById("element");
element.addEventListener("report", (e) => console.log("element report", e.detail.report));

const readerPromise = createReader({ backend: "auto" });
document.getElementById("file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  out.textContent = "reading…";
  try {
    const reader = await readerPromise;
    const report = await reader.read(file, { name: file.name });
    out.textContent = JSON.stringify(report, null, 2);
  } catch (err) {
    out.textContent = `error ${err.kind}: ${err.message}`;
  }
});
