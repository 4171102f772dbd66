
// plan.rs Epilogue, shared by conv.wgsl and contract.wgsl (appended to each): value + addend, clamped.
// p[base..] = [has_add, add_dims[6], add_strides[6], lo (f32 bits), hi (f32 bits)].
fn epilogue(v: f32, i: u32, base: u32) -> f32 {
  var r = v;
  if (p[base] != 0u) {
    var rest = i;
    var at = 0u;
    for (var k = 5u; k < 6u; k--) { // 5 down to 0: the u32 wraps past 0 and ends the loop
      let d = p[base + 1u + k];
      at += (rest % d) * p[base + 7u + k];
      rest = rest / d;
    }
    r += addend[at];
  }
  return min(max(r, bitcast<f32>(p[base + 13u])), bitcast<f32>(p[base + 14u]));
}
