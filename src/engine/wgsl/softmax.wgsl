// Step::Softmax: softmax along the middle axis of an [outer, axis, inner] view (plan.rs), one invocation per
// (outer, inner) pair. p = [outer * inner, axis, inner].
@group(0) @binding(0) var<storage, read> p: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p[0]) { return; }
  let n = p[1];
  let inner = p[2];
  let base = (i / inner) * n * inner + i % inner;
  var m = bitcast<f32>(0xff7fffffu);
  for (var k = 0u; k < n; k++) { m = max(m, x[base + k * inner]); }
  var sum = 0.0;
  for (var k = 0u; k < n; k++) { sum += exp(x[base + k * inner] - m); }
  for (var k = 0u; k < n; k++) { out[base + k * inner] = exp(x[base + k * inner] - m) / sum; }
}
