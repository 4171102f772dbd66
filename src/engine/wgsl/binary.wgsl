// Step::Binary: out[i] = op(a, b) with broadcasting (plan.rs). p = [len, op, dims[6], a_strides[6],
// b_strides[6]], shapes right-aligned in 6 axes.
@group(0) @binding(0) var<storage, read> p: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p[0]) { return; }
  var rest = i;
  var oa = 0u;
  var ob = 0u;
  for (var k = 5; k >= 0; k--) {
    let d = p[2 + k];
    let c = rest % d;
    rest = rest / d;
    oa += c * p[8 + k];
    ob += c * p[14 + k];
  }
  let x = a[oa];
  let y = b[ob];
  var r: f32;
  switch (p[1]) {
    case 0u: { r = x + y; }
    case 1u: { r = x - y; }
    case 2u: { r = x * y; }
    case 3u: { r = x / y; }
    case 4u: { r = max(x, y); }
    default: { r = min(x, y); }
  }
  out[i] = r;
}
