// Step::Conv: grouped 2-D convolution, batch 1, kernel OIHW (plan.rs). One invocation per output value.
// p = [len, in_c, in_h, in_w, out_c, out_h, out_w, groups, kernel_h, kernel_w, stride_y, stride_x,
// dilation_y, dilation_x, pad_y, pad_x, bias_stride, has_bias, channels_last (data [H, W, C], else [C, H, W]),
// then the epilogue's words from 19 (epilogue.wgsl, appended).
@group(0) @binding(0) var<storage, read> p: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> addend: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p[0]) { return; }
  let in_c = p[1]; let in_h = i32(p[2]); let in_w = i32(p[3]);
  let out_c = p[4]; let out_h = p[5]; let out_w = p[6];
  let kh = p[8]; let kw = p[9];
  let last = p[18] != 0u;
  var ox: u32; var oy: u32; var oc: u32;
  if (last) {
    oc = i % out_c; ox = (i / out_c) % out_w; oy = i / (out_c * out_w);
  } else {
    ox = i % out_w; oy = (i / out_w) % out_h; oc = i / (out_w * out_h);
  }
  let cin_g = in_c / p[7];
  let g = oc / (out_c / p[7]);
  var acc = 0.0;
  if (p[17] != 0u) { acc = bias[oc * p[16]]; }
  let y0 = i32(oy * p[10]) - i32(p[14]);
  let x0 = i32(ox * p[11]) - i32(p[15]);
  for (var ic = 0u; ic < cin_g; ic++) {
    let ch = g * cin_g + ic;
    let wbase = (oc * cin_g + ic) * kh;
    for (var ky = 0u; ky < kh; ky++) {
      let iy = y0 + i32(ky * p[12]);
      if (iy < 0 || iy >= in_h) { continue; }
      let wrow = (wbase + ky) * kw;
      for (var kx = 0u; kx < kw; kx++) {
        let ix = x0 + i32(kx * p[13]);
        if (ix < 0 || ix >= in_w) { continue; }
        var at: u32;
        if (last) { at = (u32(iy) * u32(in_w) + u32(ix)) * in_c + ch; } else { at = (ch * u32(in_h) + u32(iy)) * u32(in_w) + u32(ix); }
        acc += x[at] * w[wrow + kx];
      }
    }
  }
  out[i] = epilogue(acc, i, 19u);
}
