// Step::Unary: out[i] = op(x[i]) (plan.rs). p = [len, op].
@group(0) @binding(0) var<storage, read> p: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p[0]) { return; }
  let v = x[i];
  var r: f32;
  switch (p[1]) {
    case 0u: { r = 1.0 / (1.0 + exp(-v)); }
    case 1u: { r = exp(v); }
    case 2u: { r = abs(v); }
    case 3u: { r = -v; }
    case 4u: { r = sqrt(v); }
    case 5u: { r = 1.0 / v; }
    default: { r = tanh(v); }
  }
  out[i] = r;
}
