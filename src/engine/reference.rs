//! A plain-Rust executor for `plan::Plan`, step for step what the WebGPU kernels (`webgpu.wgsl`) compute.
//! It is the specification those kernels are held to: native tests check it against tract, and the browser
//! parity tests check the GPU against tract. Slow (no SIMD, no tiling); not used to read images.

use super::plan::{Accumulate, BinaryOp, ContractStep, ConvStep, Plan, Step, UnaryOp};

/// Run the plan on one input; returns the output tensors (shape, values) in the plan's output order.
pub fn run(plan: &Plan, input: &[f32]) -> Result<Vec<(Vec<usize>, Vec<f32>)>, String> {
    let mut mem: Vec<Vec<f32>> =
        plan.buffers.iter().map(|b| b.data.clone().unwrap_or_else(|| vec![0.0; b.len])).collect();
    if input.len() != mem[plan.input].len() {
        return Err(format!("input has {} values, expected {}", input.len(), mem[plan.input].len()));
    }
    mem[plan.input].copy_from_slice(input);
    for step in &plan.steps {
        let out = step.output();
        let mut result = std::mem::take(&mut mem[out]);
        match step {
            Step::Binary { op, a, b, dims, a_strides, b_strides, .. } => {
                for (i, r) in result.iter_mut().enumerate() {
                    let (oa, ob) = offsets(i, dims, a_strides, b_strides);
                    *r = binary(*op, mem[*a][oa], mem[*b][ob]);
                }
            }
            Step::Unary { op, x, .. } => {
                for (r, &v) in result.iter_mut().zip(&mem[*x]) {
                    *r = unary(*op, v);
                }
            }
            Step::Conv(c) => conv(c, &mem, &mut result),
            Step::Contract(c) => contract(c, &mem, &mut result),
            Step::Softmax { x, outer, axis, inner, .. } => {
                let x = &mem[*x];
                for o in 0..*outer {
                    for i in 0..*inner {
                        let at = |k: usize| (o * axis + k) * inner + i;
                        let max = (0..*axis).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
                        let sum: f32 = (0..*axis).map(|k| (x[at(k)] - max).exp()).sum();
                        for k in 0..*axis {
                            result[at(k)] = (x[at(k)] - max).exp() / sum;
                        }
                    }
                }
            }
        }
        mem[out] = result;
    }
    Ok(plan.outputs.iter().map(|(b, shape)| (shape.clone(), mem[*b].clone())).collect())
}

/// Offsets into two strided operands of the element at flat output index `i`.
fn offsets(mut i: usize, dims: &[usize], sa: &[usize], sb: &[usize]) -> (usize, usize) {
    let (mut oa, mut ob) = (0, 0);
    for k in (0..dims.len()).rev() {
        let c = i % dims[k];
        i /= dims[k];
        oa += c * sa[k];
        ob += c * sb[k];
    }
    (oa, ob)
}

pub fn binary(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
    }
}

pub fn unary(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Neg => -x,
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Tanh => x.tanh(),
    }
}

fn conv(c: &ConvStep, mem: &[Vec<f32>], out: &mut [f32]) {
    let (x, w) = (&mem[c.x], &mem[c.kernel]);
    let cin_g = c.in_c / c.groups;
    let cout_g = c.out_c / c.groups;
    for oc in 0..c.out_c {
        let g = oc / cout_g;
        let bias = c.bias.map_or(0.0, |b| mem[b][oc * c.bias_stride]);
        for oy in 0..c.out_h {
            for ox in 0..c.out_w {
                let mut acc = bias;
                for ic in 0..cin_g {
                    let ch = g * cin_g + ic;
                    for ky in 0..c.kernel_h {
                        let iy = (oy * c.stride[0] + ky * c.dilation[0]) as isize - c.pad[0] as isize;
                        if iy < 0 || iy >= c.in_h as isize {
                            continue;
                        }
                        for kx in 0..c.kernel_w {
                            let ix = (ox * c.stride[1] + kx * c.dilation[1]) as isize - c.pad[1] as isize;
                            if ix < 0 || ix >= c.in_w as isize {
                                continue;
                            }
                            let (iy, ix) = (iy as usize, ix as usize);
                            let xv = if c.channels_last {
                                x[(iy * c.in_w + ix) * c.in_c + ch]
                            } else {
                                x[(ch * c.in_h + iy) * c.in_w + ix]
                            };
                            let wv = w[((oc * cin_g + ic) * c.kernel_h + ky) * c.kernel_w + kx];
                            acc += xv * wv;
                        }
                    }
                }
                let at = if c.channels_last {
                    (oy * c.out_w + ox) * c.out_c + oc
                } else {
                    (oc * c.out_h + oy) * c.out_w + ox
                };
                out[at] = c.epilogue.apply(acc, at, mem);
            }
        }
    }
}

fn contract(c: &ContractStep, mem: &[Vec<f32>], out: &mut [f32]) {
    let a = &mem[c.a];
    let b = c.b.map(|b| &mem[b]);
    let terms: usize = c.sum_dims.iter().product();
    for (o, r) in out.iter_mut().enumerate() {
        let (ba, bb) = offsets(o, &c.out_dims, &c.a_out, &c.b_out);
        let mut acc = match c.acc {
            Accumulate::Sum => 0.0,
            Accumulate::Max => f32::NEG_INFINITY,
            Accumulate::Min => f32::INFINITY,
        };
        for s in 0..terms {
            let (sa, sb) = offsets(s, &c.sum_dims, &c.a_sum, &c.b_sum);
            let term = a[ba + sa] * b.map_or(1.0, |b| b[bb + sb]);
            acc = match c.acc {
                Accumulate::Sum => acc + term,
                Accumulate::Max => acc.max(term),
                Accumulate::Min => acc.min(term),
            };
        }
        *r = c.epilogue.apply(acc, o, mem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Buffer;

    fn conv_plan(channels_last: bool, x: Vec<f32>, w: Vec<f32>) -> Plan {
        let (c, h, wd, oc) = (4, 5, 6, 6);
        let buffers = vec![
            Buffer { len: x.len(), data: None },
            Buffer { len: w.len(), data: Some(w) },
            Buffer { len: oc, data: Some((0..oc).map(|k| k as f32 * 0.5).collect()) },
            Buffer { len: oc * 3 * 3, data: None },
        ];
        let step = Step::Conv(ConvStep {
            x: 0,
            kernel: 1,
            bias: Some(2),
            bias_stride: 1,
            epilogue: Default::default(),
            out: 3,
            channels_last,
            in_c: c,
            in_h: h,
            in_w: wd,
            out_c: oc,
            out_h: 3,
            out_w: 3,
            groups: 2,
            kernel_h: 3,
            kernel_w: 3,
            stride: [2, 2],
            dilation: [1, 2],
            pad: [1, 1],
        });
        Plan { buffers, steps: vec![step], input: 0, outputs: vec![(3, vec![oc, 3, 3])] }
    }

    #[test]
    fn channels_last_convolution_is_the_transpose_of_channels_first() {
        let (c, h, w, oc) = (4, 5, 6, 6);
        let x: Vec<f32> = (0..c * h * w).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let k: Vec<f32> = (0..oc * 2 * 9).map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0).collect();
        let chw = run(&conv_plan(false, x.clone(), k.clone()), &x).unwrap().remove(0).1;
        // the same data as [H, W, C]
        let mut hwc = vec![0.0; x.len()];
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    hwc[(y * w + xx) * c + ch] = x[(ch * h + y) * w + xx];
                }
            }
        }
        let out = run(&conv_plan(true, hwc.clone(), k.clone()), &hwc).unwrap().remove(0).1;
        for o in 0..oc {
            for p in 0..9 {
                assert_eq!(out[p * oc + o], chw[o * 9 + p], "channel {o}, position {p}");
            }
        }
        // one value by hand: output channel 0 at (0, 0) reads group 0 (channels 0-1), rows -1..1 (stride 2,
        // pad 1), columns -1, 1, 3 (dilation 2)
        let mut want = 0.0; // bias of channel 0
        for ic in 0..2 {
            for ky in 0..3 {
                for kx in 0..3 {
                    let (iy, ix) = (ky as isize - 1, kx as isize * 2 - 1);
                    if iy >= 0 && ix >= 0 {
                        want += x[(ic * h + iy as usize) * w + ix as usize] * k[(ic * 3 + ky) * 3 + kx];
                    }
                }
            }
        }
        assert!((chw[0] - want).abs() < 1e-5, "{} vs {want}", chw[0]);
    }
}
