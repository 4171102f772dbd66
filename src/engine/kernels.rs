//! What the GPU engines dispatch for each step of a `plan::Plan`: the WGSL kernels (`wgsl/*.wgsl`, each a
//! transcription of `reference`), every step's parameter words, its bindings and its grid. Shared by the
//! browser's engine (`webgpu`, web-sys) and the native one (`native_gpu`, wgpu), so both run the same
//! shaders on the same words.

use super::plan::{Epilogue, Plan, Step};

/// The kernels, indexed by `Dispatch::kernel`; each has one entry point, `main`.
pub const KERNELS: [&str; 5] = [
    include_str!("wgsl/binary.wgsl"),
    include_str!("wgsl/unary.wgsl"),
    concat!(include_str!("wgsl/conv.wgsl"), include_str!("wgsl/epilogue.wgsl")),
    concat!(include_str!("wgsl/contract.wgsl"), include_str!("wgsl/epilogue.wgsl")),
    include_str!("wgsl/softmax.wgsl"),
];
/// Invocations per workgroup (every kernel's `@workgroup_size`).
const WORKGROUP: u32 = 64;
/// The most workgroups along one grid axis that WebGPU's default limits allow.
const MAX_GROUPS: u32 = 65535;
/// Storage buffers one step binds at most (conv: parameters, input, weights, bias, addend, output).
pub const MAX_BINDINGS: u32 = 6;

/// A stand-in bound where a step has no operand: the value 1 (a contraction without `b`) or 0 (no bias,
/// no epilogue addend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    One,
    Zero,
}

/// One step as the GPU runs it.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Index into `KERNELS`.
    pub kernel: usize,
    /// The kernel's parameter words (binding 0).
    pub params: Vec<u32>,
    /// Bindings 1..: a plan buffer id, or the stand-in for an absent operand. The output (`Step::output`)
    /// is bound after them.
    pub inputs: Vec<Result<usize, StandIn>>,
    /// Workgroups along x and y (kernels fold y back into one index).
    pub groups: [u32; 2],
}

impl Dispatch {
    pub fn of(step: &Step) -> Dispatch {
        let (kernel, params, inputs, invocations) = encode(step);
        let inputs = inputs
            .iter()
            .enumerate()
            .map(|(k, input)| match input {
                Some(id) => Ok(*id),
                None if kernel == 3 && k == 1 => Err(StandIn::One),
                None => Err(StandIn::Zero),
            })
            .collect();
        let total = (invocations as u32).div_ceil(WORKGROUP).max(1);
        let x = total.min(MAX_GROUPS);
        Dispatch { kernel, params, inputs, groups: [x, total.div_ceil(x)] }
    }
}

/// Where the model's outputs lie in the one buffer that a read copies them into and maps.
#[derive(Debug, Clone)]
pub struct Readback {
    /// Per output, in the plan's order: its plan buffer, its shape, its byte offset.
    pub outputs: Vec<(usize, Vec<usize>, u64)>,
    /// The buffer's size in bytes.
    pub bytes: u64,
}

impl Readback {
    pub fn of(plan: &Plan) -> Readback {
        let mut outputs = Vec::new();
        let mut bytes = 0u64;
        for (id, shape) in &plan.outputs {
            outputs.push((*id, shape.clone(), bytes));
            bytes += (plan.buffers[*id].len * 4).max(4).next_multiple_of(4) as u64;
        }
        Readback { outputs, bytes }
    }

    /// Bytes to copy for output `k` (its values; the buffer may be longer).
    pub fn copy_bytes(&self, k: usize) -> u64 {
        (self.outputs[k].1.iter().product::<usize>() * 4) as u64
    }

    /// The outputs cut out of the mapped buffer's values, as `OutputSpec::raw_outputs` takes them.
    pub fn split(&self, values: &[f32]) -> Vec<(Vec<usize>, Vec<f32>)> {
        self.outputs
            .iter()
            .map(|(_, shape, offset)| {
                let start = (*offset as usize / 4).min(values.len());
                let end = (start + shape.iter().product::<usize>()).min(values.len());
                (shape.clone(), values[start..end].to_vec())
            })
            .collect()
    }
}

/// Bytes of f32 or u32 data as the GPU takes them (wasm and x86/Arm hosts are little-endian).
pub fn bytes_of<T: Copy>(values: &[T]) -> &[u8] {
    // SAFETY: f32 and u32 have no padding or invalid bit patterns; the slice covers exactly their bytes.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) }
}

/// Six axes, right-aligned, padded with `pad`.
fn six(values: &[usize], pad: u32) -> [u32; 6] {
    let mut out = [pad; 6];
    let skip = 6 - values.len();
    for (o, v) in out[skip..].iter_mut().zip(values) {
        *o = *v as u32;
    }
    out
}

/// The epilogue's parameter words (epilogue.wgsl); infinite bounds become ±f32::MAX.
fn epilogue_words(e: &Epilogue) -> Vec<u32> {
    let mut p = vec![u32::from(e.add.is_some())];
    match &e.add {
        Some((_, dims, strides)) => {
            p.extend(six(dims, 1));
            p.extend(six(strides, 0));
        }
        None => p.extend([1; 6].into_iter().chain([0; 6])),
    }
    p.push(e.lo.max(f32::MIN).to_bits());
    p.push(e.hi.min(f32::MAX).to_bits());
    p
}

/// The kernel, its parameter words, its input buffers (plan ids, `None` for the kernel's stand-in) and its
/// invocation count.
fn encode(step: &Step) -> (usize, Vec<u32>, Vec<Option<usize>>, usize) {
    match step {
        Step::Binary { op, a, b, dims, a_strides, b_strides, .. } => {
            let len: usize = dims.iter().product();
            let mut p = vec![len as u32, *op as u32];
            p.extend(six(dims, 1));
            p.extend(six(a_strides, 0));
            p.extend(six(b_strides, 0));
            (0, p, vec![Some(*a), Some(*b)], len)
        }
        Step::Unary { op, x, len, .. } => (1, vec![*len as u32, *op as u32], vec![Some(*x)], *len),
        Step::Conv(c) => {
            let len = c.out_c * c.out_h * c.out_w;
            let p = [
                len,
                c.in_c,
                c.in_h,
                c.in_w,
                c.out_c,
                c.out_h,
                c.out_w,
                c.groups,
                c.kernel_h,
                c.kernel_w,
                c.stride[0],
                c.stride[1],
                c.dilation[0],
                c.dilation[1],
                c.pad[0],
                c.pad[1],
                c.bias_stride,
                usize::from(c.bias.is_some()),
                usize::from(c.channels_last),
            ];
            let mut p: Vec<u32> = p.iter().map(|&v| v as u32).collect();
            p.extend(epilogue_words(&c.epilogue));
            let add = c.epilogue.add.as_ref().map(|a| a.0);
            (2, p, vec![Some(c.x), Some(c.kernel), c.bias, add], len)
        }
        Step::Contract(c) => {
            let len: usize = c.out_dims.iter().product();
            let terms: usize = c.sum_dims.iter().product();
            let mut p = vec![len as u32, c.acc as u32, terms as u32];
            p.extend(six(&c.out_dims, 1));
            p.extend(six(&c.a_out, 0));
            p.extend(six(&c.b_out, 0));
            p.extend(six(&c.sum_dims, 1));
            p.extend(six(&c.a_sum, 0));
            p.extend(six(&c.b_sum, 0));
            p.extend(epilogue_words(&c.epilogue));
            (3, p, vec![Some(c.a), c.b, c.epilogue.add.as_ref().map(|a| a.0)], len)
        }
        Step::Softmax { x, outer, axis, inner, .. } => {
            let rows = outer * inner;
            (4, vec![rows as u32, *axis as u32, *inner as u32], vec![Some(*x)], rows)
        }
    }
}
