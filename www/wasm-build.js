// Which of the two wasm builds this browser runs (scripts/build-web.sh makes both from the same code):
// "pkg-relaxed" (SIMD128 + relaxed SIMD: fused multiply-add in the matrix kernel) where the engine validates
// a relaxed-SIMD instruction, "pkg" (SIMD128 only) otherwise. A plain script that is also a valid module, so
// the reading worker (`import`) and the service worker (`importScripts`) run the same test and agree.
globalThis.xrayWasmBuild = (() => {
  const v128 = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
  // one function () -> v128: f32x4.relaxed_madd(0, 0, 0)
  const body = [0x00, ...v128, ...v128, ...v128, 0xfd, 0x85, 0x02, 0x0b];
  const module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
    0x03, 0x02, 0x01, 0x00, 0x0a, body.length + 2, 0x01, body.length, ...body];
  try {
    return WebAssembly.validate(new Uint8Array(module)) ? "pkg-relaxed" : "pkg";
  } catch {
    return "pkg";
  }
})();
// The build a reader runs for its `wasmBuild` option ("auto" or "simd128"): the page (which compiles it on a repeat
// start) and the reading worker (which loads it) ask this one function, so they cannot disagree.
globalThis.xrayWasmBuildFor = (wasmBuild) => (wasmBuild === "simd128" ? "pkg" : globalThis.xrayWasmBuild);
