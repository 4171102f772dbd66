// Step::Contract: out[o] = accumulate over s of a[o·a_out + s·a_sum] · b[o·b_out + s·b_sum] (plan.rs): einsum,
// 1×1 convolutions, matrix products, reductions, transposes. Without b, b is a one-element buffer holding 1
// read with zero strides. p = [len, acc (0 sum, 1 max, 2 min), terms, out_dims[6], a_out[6], b_out[6],
// sum_dims[6], a_sum[6], b_sum[6], then the epilogue's words from 39 (epilogue.wgsl, appended)], axes
// right-aligned in 6.
@group(0) @binding(0) var<storage, read> p: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> addend: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p[0]) { return; }
  var rest = i;
  var oa = 0u;
  var ob = 0u;
  for (var k = 5; k >= 0; k--) {
    let d = p[3 + k];
    let c = rest % d;
    rest = rest / d;
    oa += c * p[9 + k];
    ob += c * p[15 + k];
  }
  let mode = p[1];
  var acc = 0.0;
  if (mode == 1u) { acc = bitcast<f32>(0xff7fffffu); }
  if (mode == 2u) { acc = bitcast<f32>(0x7f7fffffu); }
  // odometer over the summed axes: offsets move by a stride, carries rewind it
  var c = array<u32, 6>(0u, 0u, 0u, 0u, 0u, 0u);
  for (var s = 0u; s < p[2]; s++) {
    let t = a[oa] * b[ob];
    if (mode == 0u) { acc += t; } else if (mode == 1u) { acc = max(acc, t); } else { acc = min(acc, t); }
    for (var k = 5; k >= 0; k--) {
      c[k] += 1u;
      oa += p[27 + k];
      ob += p[33 + k];
      if (c[k] < p[21 + k]) { break; }
      oa -= c[k] * p[27 + k];
      ob -= c[k] * p[33 + k];
      c[k] = 0u;
    }
  }
  out[i] = epilogue(acc, i, 39u);
}
