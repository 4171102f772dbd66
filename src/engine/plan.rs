//! An execution plan lowered from tract's decluttered typed model: a flat list of steps over numbered f32
//! buffers, with every shape, stride and constant resolved at load. It is what the WebGPU engine runs, one
//! compute kernel per step kind, so a new model needs new GPU code only when it brings an op outside this
//! list. `reference` runs the same plan in plain Rust: the specification the GPU kernels are tested against.
//!
//! Step kinds (five kernels): broadcasting binary ops, unary ops, grouped 2-D convolution, a general
//! contraction (einsum, 1×1 convolutions, matrix products, sums/max/min over axes, transposes and broadcasts
//! are all "out[o] = reduce over s of a[o, s] · b[o, s]" with per-axis strides), and softmax over one axis.
//! Reshapes that do not move data (adding/removing unit axes, reshape, f32 casts) alias their input buffer.

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::MultiBroadcastTo;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::nn::{DataFormat, Reduce, Reducer, Softmax, SoftmaxKind};
use tract_onnx::tract_core::ops::source::TypedSource;

/// Most axes a binary or contraction step handles (output axes, and summed axes, each).
pub const MAX_RANK: usize = 6;

#[derive(Debug, Clone)]
pub struct Plan {
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
    /// The buffer the preprocessed input is written to.
    pub input: usize,
    /// Output buffers with their shapes, in the model's output order.
    pub outputs: Vec<(usize, Vec<usize>)>,
}

/// One f32 buffer: an activation (`data` is None) or a constant uploaded once at load.
#[derive(Debug, Clone)]
pub struct Buffer {
    pub len: usize,
    pub data: Option<Vec<f32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Max = 4,
    Min = 5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Sigmoid = 0,
    Exp = 1,
    Abs = 2,
    Neg = 3,
    Sqrt = 4,
    Recip = 5,
    Tanh = 6,
}

/// How a contraction combines the terms over its summed axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accumulate {
    /// Σ a·b (b taken as 1 when absent).
    Sum = 0,
    Max = 1,
    Min = 2,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// out[i] = op(a, b), `dims` the output shape; strides are 0 along broadcast axes.
    Binary {
        op: BinaryOp,
        a: usize,
        b: usize,
        out: usize,
        dims: Vec<usize>,
        a_strides: Vec<usize>,
        b_strides: Vec<usize>,
    },
    /// out[i] = op(x[i]).
    Unary { op: UnaryOp, x: usize, out: usize, len: usize },
    /// Grouped 2-D convolution, channels first, batch 1, kernel OIHW, bias per output channel (or one scalar).
    Conv(ConvStep),
    /// out[o] = accumulate over s of a[Σ o·a_out + s·a_sum] (· b[Σ o·b_out + s·b_sum]).
    Contract(ContractStep),
    /// Softmax along the middle axis of an [outer, axis, inner] view.
    Softmax { x: usize, out: usize, outer: usize, axis: usize, inner: usize },
}

#[derive(Debug, Clone)]
pub struct ConvStep {
    pub x: usize,
    pub kernel: usize,
    pub bias: Option<usize>,
    /// 1 when the bias has a value per output channel, 0 when it is one scalar.
    pub bias_stride: usize,
    pub out: usize,
    /// Data as [H, W, C] instead of [C, H, W].
    pub channels_last: bool,
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub groups: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before the first row and column.
    pub pad: [usize; 2],
    pub epilogue: Epilogue,
}

/// What a convolution or contraction does to each value before storing it, folded in from the element-wise
/// steps that followed it (bias adds, ReLU6 clamps): out = clamp(value + add, lo, hi).
#[derive(Debug, Clone)]
pub struct Epilogue {
    /// A broadcast operand: its buffer, the output's shape as that add saw it, and the strides to read it.
    pub add: Option<(usize, Vec<usize>, Vec<usize>)>,
    pub lo: f32,
    pub hi: f32,
}

impl Default for Epilogue {
    fn default() -> Epilogue {
        Epilogue { add: None, lo: f32::NEG_INFINITY, hi: f32::INFINITY }
    }
}

impl Epilogue {
    /// The value stored for a computed `value` at flat output index `i`.
    pub fn apply(&self, value: f32, i: usize, buffers: &[Vec<f32>]) -> f32 {
        let mut v = value;
        if let Some((b, dims, strides)) = &self.add {
            let (mut rest, mut at) = (i, 0);
            for k in (0..dims.len()).rev() {
                at += rest % dims[k] * strides[k];
                rest /= dims[k];
            }
            v += buffers[*b][at];
        }
        v.max(self.lo).min(self.hi)
    }
}

#[derive(Debug, Clone)]
pub struct ContractStep {
    pub acc: Accumulate,
    pub a: usize,
    pub b: Option<usize>,
    pub out: usize,
    pub out_dims: Vec<usize>,
    pub a_out: Vec<usize>,
    pub b_out: Vec<usize>,
    pub sum_dims: Vec<usize>,
    pub a_sum: Vec<usize>,
    pub b_sum: Vec<usize>,
    pub epilogue: Epilogue,
}

impl Step {
    /// The buffer this step writes.
    pub fn output(&self) -> usize {
        match self {
            Step::Binary { out, .. } | Step::Unary { out, .. } | Step::Softmax { out, .. } => *out,
            Step::Conv(c) => c.out,
            Step::Contract(c) => c.out,
        }
    }

    fn remap(&mut self, map: &[usize]) {
        let m = |b: &mut usize| *b = map[*b];
        match self {
            Step::Binary { a, b, out, .. } => {
                m(a);
                m(b);
                m(out);
            }
            Step::Unary { x, out, .. } | Step::Softmax { x, out, .. } => {
                m(x);
                m(out);
            }
            Step::Conv(c) => {
                m(&mut c.x);
                m(&mut c.kernel);
                c.bias.iter_mut().for_each(m);
                c.epilogue.add.iter_mut().for_each(|a| m(&mut a.0));
                m(&mut c.out);
            }
            Step::Contract(c) => {
                m(&mut c.a);
                c.b.iter_mut().for_each(m);
                c.epilogue.add.iter_mut().for_each(|a| m(&mut a.0));
                m(&mut c.out);
            }
        }
    }

    /// The buffers this step reads.
    pub fn inputs(&self) -> Vec<usize> {
        match self {
            Step::Binary { a, b, .. } => vec![*a, *b],
            Step::Unary { x, .. } | Step::Softmax { x, .. } => vec![*x],
            Step::Conv(c) => [Some(c.x), Some(c.kernel), c.bias, c.epilogue.add.as_ref().map(|a| a.0)]
                .into_iter()
                .flatten()
                .collect(),
            Step::Contract(c) => [Some(c.a), c.b, c.epilogue.add.as_ref().map(|a| a.0)].into_iter().flatten().collect(),
        }
    }
}

/// Row-major strides of a shape.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides that read `shape` broadcast to `out` (same rank after left-padding with unit axes).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> std::result::Result<Vec<usize>, String> {
    if shape.len() > out.len() {
        return Err(format!("cannot broadcast {shape:?} to {out:?}"));
    }
    let mut padded = vec![1; out.len() - shape.len()];
    padded.extend_from_slice(shape);
    let strides = strides_of(&padded);
    padded
        .iter()
        .zip(out)
        .zip(strides)
        .map(|((&d, &o), s)| match (d, o) {
            (d, o) if d == o => Ok(if d == 1 { 0 } else { s }),
            (1, _) => Ok(0),
            _ => Err(format!("cannot broadcast {shape:?} to {out:?}")),
        })
        .collect()
}

struct Lowering<'m> {
    model: &'m TypedModel,
    plan: Plan,
    /// The buffer behind each computed outlet.
    values: HashMap<OutletId, usize>,
}

impl Lowering<'_> {
    fn shape(&self, outlet: OutletId) -> std::result::Result<Vec<usize>, String> {
        let fact = self.model.outlet_fact(outlet).map_err(|e| format!("{e:#}"))?;
        if fact.datum_type != f32::datum_type() {
            return Err(format!("tensor {outlet:?} is {:?}; the WebGPU engine computes in f32", fact.datum_type));
        }
        fact.shape.as_concrete().map(|s| s.to_vec()).ok_or_else(|| format!("tensor {outlet:?} has no fixed shape"))
    }

    fn new_buffer(&mut self, len: usize, data: Option<Vec<f32>>) -> usize {
        self.plan.buffers.push(Buffer { len, data });
        self.plan.buffers.len() - 1
    }

    /// The buffer holding `outlet`, materialising constants on first use.
    fn value(&mut self, outlet: OutletId) -> std::result::Result<usize, String> {
        if let Some(&b) = self.values.get(&outlet) {
            return Ok(b);
        }
        let node = self.model.node(outlet.node);
        let konst = node.op_as::<Const>().ok_or_else(|| format!("`{}` is used before it is computed", node.name))?;
        let tensor = konst.val();
        let data: Vec<f32> = tensor
            .to_plain_array_view::<f32>()
            .map_err(|_| format!("constant `{}` is {:?}, not f32", node.name, tensor.datum_type()))?
            .iter()
            .copied()
            .collect();
        let b = self.new_buffer(data.len(), Some(data));
        self.values.insert(outlet, b);
        Ok(b)
    }

    fn output_buffer(&mut self, node: &TypedNode) -> std::result::Result<(usize, Vec<usize>), String> {
        let shape = self.shape(OutletId::new(node.id, 0))?;
        let b = self.new_buffer(shape.iter().product(), None);
        self.values.insert(OutletId::new(node.id, 0), b);
        Ok((b, shape))
    }

    fn lower_node(&mut self, node: &TypedNode) -> std::result::Result<(), String> {
        let op: &dyn TypedOp = node.op.as_ref();
        if op.downcast_ref::<Const>().is_some() {
            return Ok(()); // materialised where used
        }
        if op.downcast_ref::<TypedSource>().is_some() {
            let (b, _) = self.output_buffer(node)?;
            self.plan.input = b;
            return Ok(());
        }
        let alias = match op.downcast_ref::<AxisOp>() {
            Some(AxisOp::Add(_)) | Some(AxisOp::Rm(_)) | Some(AxisOp::Reshape(..)) => true,
            _ => op.downcast_ref::<Cast>().is_some_and(|c| c.to == f32::datum_type()),
        };
        if alias {
            let from = self.value(node.inputs[0])?;
            self.shape(OutletId::new(node.id, 0))?;
            self.values.insert(OutletId::new(node.id, 0), from);
            return Ok(());
        }
        let step = if let Some(bin) = op.downcast_ref::<TypedBinOp>() {
            self.binary(node, bin)?
        } else if let Some(ew) = op.downcast_ref::<ElementWiseOp>() {
            let uop = match ew.0.name().as_ref() {
                "Sigmoid" => UnaryOp::Sigmoid,
                "Exp" => UnaryOp::Exp,
                "Abs" => UnaryOp::Abs,
                "Neg" => UnaryOp::Neg,
                "Sqrt" => UnaryOp::Sqrt,
                "Recip" => UnaryOp::Recip,
                "Tanh" => UnaryOp::Tanh,
                other => return Err(format!("element-wise `{other}` has no WebGPU kernel")),
            };
            let x = self.value(node.inputs[0])?;
            let (out, shape) = self.output_buffer(node)?;
            Step::Unary { op: uop, x, out, len: shape.iter().product() }
        } else if let Some(conv) = op.downcast_ref::<Conv>() {
            self.conv(node, conv)?
        } else if let Some(einsum) = op.downcast_ref::<EinSum>() {
            self.einsum(node, einsum)?
        } else if let Some(reduce) = op.downcast_ref::<Reduce>() {
            let acc = match reduce.reducer {
                Reducer::Sum => Accumulate::Sum,
                Reducer::Max => Accumulate::Max,
                Reducer::Min => Accumulate::Min,
                ref other => return Err(format!("reduce {other:?} has no WebGPU kernel")),
            };
            let in_shape = self.shape(node.inputs[0])?;
            let strides = strides_of(&in_shape);
            let a = self.value(node.inputs[0])?;
            let (out, out_dims) = self.output_buffer(node)?;
            let reduced = |i: &usize| reduce.axes.contains(i);
            let a_out = (0..in_shape.len()).map(|i| if reduced(&i) { 0 } else { strides[i] }).collect();
            let sum_axes: Vec<usize> = (0..in_shape.len()).filter(reduced).collect();
            Step::Contract(ContractStep {
                acc,
                a,
                b: None,
                out,
                b_out: vec![0; out_dims.len()],
                out_dims,
                a_out,
                sum_dims: sum_axes.iter().map(|&i| in_shape[i]).collect(),
                a_sum: sum_axes.iter().map(|&i| strides[i]).collect(),
                b_sum: vec![0; sum_axes.len()],
                epilogue: Epilogue::default(),
            })
        } else if let Some(softmax) = op.downcast_ref::<Softmax>() {
            if softmax.axes.len() != 1 || softmax.kind != SoftmaxKind::Softmax || softmax.quant_output_dt.is_some() {
                return Err(format!("softmax `{}` over {:?} has no WebGPU kernel", node.name, softmax.axes));
            }
            let shape = self.shape(node.inputs[0])?;
            let ax = softmax.axes[0];
            let x = self.value(node.inputs[0])?;
            let (out, _) = self.output_buffer(node)?;
            Step::Softmax {
                x,
                out,
                outer: shape[..ax].iter().product(),
                axis: shape[ax],
                inner: shape[ax + 1..].iter().product(),
            }
        } else if let Some(&AxisOp::Move(from, to)) = op.downcast_ref::<AxisOp>() {
            let in_shape = self.shape(node.inputs[0])?;
            let mut strides = strides_of(&in_shape);
            let s = strides.remove(from);
            strides.insert(to, s);
            self.copy_with_strides(node, strides)?
        } else if op.downcast_ref::<MultiBroadcastTo>().is_some() {
            let in_shape = self.shape(node.inputs[0])?;
            let out_shape = self.shape(OutletId::new(node.id, 0))?;
            self.copy_with_strides(node, broadcast_strides(&in_shape, &out_shape)?)?
        } else {
            return Err(format!("op {} (`{}`) has no WebGPU kernel", op.name(), node.name));
        };
        self.plan.steps.push(step);
        Ok(())
    }

    /// A contraction with nothing summed: a strided copy (transpose, broadcast).
    fn copy_with_strides(&mut self, node: &TypedNode, a_out: Vec<usize>) -> std::result::Result<Step, String> {
        let a = self.value(node.inputs[0])?;
        let (out, out_dims) = self.output_buffer(node)?;
        Ok(Step::Contract(ContractStep {
            acc: Accumulate::Sum,
            a,
            b: None,
            out,
            b_out: vec![0; out_dims.len()],
            out_dims,
            a_out,
            sum_dims: vec![],
            a_sum: vec![],
            b_sum: vec![],
            epilogue: Epilogue::default(),
        }))
    }

    fn binary(&mut self, node: &TypedNode, bin: &TypedBinOp) -> std::result::Result<Step, String> {
        let op = match bin.0.name() {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            "Div" => BinaryOp::Div,
            "Max" => BinaryOp::Max,
            "Min" => BinaryOp::Min,
            other => return Err(format!("binary `{other}` has no WebGPU kernel")),
        };
        let (sa, sb) = (self.shape(node.inputs[0])?, self.shape(node.inputs[1])?);
        let (a, b) = (self.value(node.inputs[0])?, self.value(node.inputs[1])?);
        let (out, dims) = self.output_buffer(node)?;
        Ok(Step::Binary {
            op,
            a,
            b,
            out,
            a_strides: broadcast_strides(&sa, &dims)?,
            b_strides: broadcast_strides(&sb, &dims)?,
            dims,
        })
    }

    fn conv(&mut self, node: &TypedNode, conv: &Conv) -> std::result::Result<Step, String> {
        let unsupported = |why: &str| Err(format!("convolution `{}`: {why}", node.name));
        let spec = &conv.pool_spec;
        if conv.q_params.is_some() {
            return unsupported("quantized convolutions have no WebGPU kernel");
        }
        if spec.kernel_shape.len() != 2 {
            return unsupported("only 2-D convolutions have a WebGPU kernel");
        }
        let x_shape = self.shape(node.inputs[0])?;
        let out_shape = self.shape(OutletId::new(node.id, 0))?;
        // (channels, height, width) of input and output, and whether channels are the last axis; tract picks
        // the layout per platform (channels first natively, channels last on wasm32)
        let chw = |s: &[usize], last: bool| if last { [s[2], s[0], s[1]] } else { [s[0], s[1], s[2]] };
        let (xs, os, channels_last) = match spec.data_format {
            DataFormat::NCHW if x_shape.len() == 4 && x_shape[0] == 1 => {
                (chw(&x_shape[1..], false), chw(&out_shape[1..], false), false)
            }
            DataFormat::NHWC if x_shape.len() == 4 && x_shape[0] == 1 => {
                (chw(&x_shape[1..], true), chw(&out_shape[1..], true), true)
            }
            DataFormat::CHW if x_shape.len() == 3 => (chw(&x_shape, false), chw(&out_shape, false), false),
            DataFormat::HWC if x_shape.len() == 3 => (chw(&x_shape, true), chw(&out_shape, true), true),
            f => return unsupported(&format!("{f:?} data of shape {x_shape:?}: only batch 1 has a kernel")),
        };
        // the kernel as OIHW: constant kernels in other layouts are permuted here, once
        let k_shape = self.shape(node.inputs[1])?;
        if k_shape.len() != 4 {
            return unsupported(&format!("kernel of shape {k_shape:?}"));
        }
        let (o_ax, i_ax, h_ax, w_ax) = match conv.kernel_fmt {
            KernelFormat::OIHW => (0, 1, 2, 3),
            KernelFormat::HWIO => (3, 2, 0, 1),
            KernelFormat::OHWI => (0, 3, 1, 2),
        };
        let oihw = [k_shape[o_ax], k_shape[i_ax], k_shape[h_ax], k_shape[w_ax]];
        let kernel = if conv.kernel_fmt == KernelFormat::OIHW {
            self.value(node.inputs[1])?
        } else {
            let src = self.value(node.inputs[1])?;
            let data = self.plan.buffers[src]
                .data
                .clone()
                .ok_or_else(|| format!("convolution `{}`: a computed {:?} kernel", node.name, conv.kernel_fmt))?;
            let st = strides_of(&k_shape);
            let mut out = Vec::with_capacity(data.len());
            for o in 0..oihw[0] {
                for i in 0..oihw[1] {
                    for h in 0..oihw[2] {
                        for w in 0..oihw[3] {
                            out.push(data[o * st[o_ax] + i * st[i_ax] + h * st[h_ax] + w * st[w_ax]]);
                        }
                    }
                }
            }
            self.new_buffer(out.len(), Some(out))
        };
        let groups = conv.group.max(1);
        if oihw[0] != os[0] || oihw[1] * groups != xs[0] || os[0] % groups != 0 {
            return unsupported(&format!("kernel {k_shape:?} does not fit input {x_shape:?} in {groups} groups"));
        }
        let k_shape = oihw;
        let padding = spec.computed_padding(&[xs[1], xs[2]]);
        let (strides, dilations) = (spec.strides(), spec.dilations());
        let bias_len: usize = match node.inputs.get(2) {
            Some(&o) => self.shape(o)?.iter().product(),
            None => 0,
        };
        let bias = match node.inputs.get(2) {
            Some(&o) if bias_len == 1 || bias_len == os[0] => Some(self.value(o)?),
            Some(_) => return unsupported("bias neither scalar nor per channel"),
            None => None,
        };
        let x = self.value(node.inputs[0])?;
        let (out, _) = self.output_buffer(node)?;
        Ok(Step::Conv(ConvStep {
            x,
            kernel,
            bias,
            channels_last,
            bias_stride: usize::from(bias_len > 1),
            out,
            in_c: xs[0],
            in_h: xs[1],
            in_w: xs[2],
            out_c: os[0],
            out_h: os[1],
            out_w: os[2],
            groups,
            kernel_h: k_shape[2],
            kernel_w: k_shape[3],
            stride: [strides[0], strides[1]],
            dilation: [dilations[0], dilations[1]],
            pad: [padding[0].pad_before, padding[1].pad_before],
            epilogue: Epilogue::default(),
        }))
    }

    fn einsum(&mut self, node: &TypedNode, einsum: &EinSum) -> std::result::Result<Step, String> {
        if einsum.q_params.is_some() || node.inputs.len() > 2 || node.inputs.is_empty() {
            return Err(format!("einsum `{}` ({}) has no WebGPU kernel", node.name, einsum.axes));
        }
        let shapes: Vec<Vec<usize>> = node.inputs.iter().map(|&i| self.shape(i)).collect::<Result<_, _>>()?;
        let strides: Vec<Vec<usize>> = shapes.iter().map(|s| strides_of(s)).collect();
        let (out, out_dims) = self.output_buffer_for_einsum(node)?;
        let rank = out_dims.len();
        let (mut a_out, mut b_out) = (vec![0; rank], vec![0; rank]);
        let (mut sum_dims, mut a_sum, mut b_sum) = (vec![], vec![], vec![]);
        for axis in einsum.axes.iter_all_axes() {
            // position of this axis in each input (None: absent), and the stride to use (0 when broadcast)
            let mut dim = 1;
            let mut at = [0usize; 2];
            for (k, positions) in axis.inputs.iter().enumerate().take(shapes.len()) {
                match positions.as_slice() {
                    [] => {}
                    [p] => {
                        let d = shapes[k][*p];
                        if d != 1 {
                            if dim != 1 && dim != d {
                                return Err(format!("einsum `{}`: axis {} sizes disagree", node.name, axis.repr));
                            }
                            dim = d;
                            at[k] = strides[k][*p];
                        }
                    }
                    _ => {
                        return Err(format!(
                            "einsum `{}`: repeated axis {} has no WebGPU kernel",
                            node.name, axis.repr
                        ));
                    }
                }
            }
            match axis.outputs[0].as_slice() {
                [p] => {
                    a_out[*p] = at[0];
                    b_out[*p] = at[1];
                }
                [] if dim > 1 => {
                    sum_dims.push(dim);
                    a_sum.push(at[0]);
                    b_sum.push(at[1]);
                }
                [] => {}
                _ => return Err(format!("einsum `{}`: repeated output axis", node.name)),
            }
        }
        let a = self.value(node.inputs[0])?;
        let b = match node.inputs.get(1) {
            Some(&o) => Some(self.value(o)?),
            None => None,
        };
        Ok(Step::Contract(ContractStep {
            acc: Accumulate::Sum,
            a,
            b,
            out,
            out_dims,
            a_out,
            b_out,
            sum_dims,
            a_sum,
            b_sum,
            epilogue: Epilogue::default(),
        }))
    }

    fn output_buffer_for_einsum(&mut self, node: &TypedNode) -> std::result::Result<(usize, Vec<usize>), String> {
        // inputs are materialised first so that constants get their buffers before the output's
        for &i in &node.inputs {
            self.value(i)?;
        }
        self.output_buffer(node)
    }
}

impl Plan {
    /// Load a model file for the GPU: the same parse, fold and checks as the CPU engine, then tract's
    /// decluttering (constant folding, canonical ops; `engine::declutter`), then lowering. Output shapes are
    /// checked against the manifest. An op without a kernel is `BackendUnavailable` (the CPU engine still
    /// runs such a model).
    pub fn load(onnx: &[u8], manifest: &crate::manifest::Manifest) -> crate::error::Result<Plan> {
        use crate::error::Error;
        let mut decluttered = super::typed_model(onnx, manifest, &mut super::LoadTimings::default())?;
        super::declutter(&mut decluttered)
            .map_err(|e| Error::ModelMismatch(format!("cannot prepare the model: {e:#}")))?;
        let mut plan = Plan::lower(&decluttered).map_err(Error::BackendUnavailable)?;
        plan.fuse_epilogues();
        plan.share_buffers();
        let shapes: Vec<Vec<usize>> = plan.outputs.iter().map(|(_, s)| s.clone()).collect();
        super::OutputSpec::of(manifest).check(&shapes)?;
        Ok(plan)
    }

    /// Lower a typed model (decluttered, fixed input shape, f32) whose outputs are the engine's outputs in
    /// order. The error names the first op that has no kernel.
    pub fn lower(model: &TypedModel) -> std::result::Result<Plan, String> {
        let mut l = Lowering {
            model,
            plan: Plan { buffers: vec![], steps: vec![], input: usize::MAX, outputs: vec![] },
            values: HashMap::new(),
        };
        let inputs = model.input_outlets().map_err(|e| format!("{e:#}"))?;
        if inputs.len() != 1 {
            return Err(format!("the model has {} inputs, the WebGPU engine takes one", inputs.len()));
        }
        for id in model.eval_order().map_err(|e| format!("{e:#}"))? {
            l.lower_node(model.node(id))?;
        }
        for &o in model.output_outlets().map_err(|e| format!("{e:#}"))? {
            let b = l.value(o)?;
            let shape = l.shape(o)?;
            l.plan.outputs.push((b, shape));
        }
        for step in &l.plan.steps {
            if let Step::Binary { dims, .. } = step {
                if dims.len() > MAX_RANK {
                    return Err(format!("a binary op of rank {} (at most {MAX_RANK})", dims.len()));
                }
            }
            if let Step::Contract(c) = step {
                if c.out_dims.len() > MAX_RANK || c.sum_dims.len() > MAX_RANK {
                    return Err(format!(
                        "a contraction of rank {}+{} (at most {MAX_RANK} each)",
                        c.out_dims.len(),
                        c.sum_dims.len()
                    ));
                }
            }
        }
        Ok(l.plan)
    }

    /// Fold the element-wise steps that follow a convolution or a sum-contraction into its epilogue: an add of
    /// a constant (bias) then max/min against constant scalars (ReLU6), when that step is the only reader of
    /// the value. The shipped model: 171 steps → 57, and two thirds less memory traffic.
    pub fn fuse_epilogues(&mut self) {
        let mut readers = vec![0usize; self.buffers.len()];
        for step in &self.steps {
            for b in step.inputs() {
                readers[b] += 1;
            }
        }
        for (b, _) in &self.outputs {
            readers[*b] += 1;
        }
        let mut removed = vec![false; self.steps.len()];
        for i in 0..self.steps.len() {
            if removed[i] {
                continue;
            }
            let Some(len) = (match &self.steps[i] {
                Step::Conv(c) => Some(c.out_c * c.out_h * c.out_w),
                Step::Contract(c) if c.acc == Accumulate::Sum => Some(c.out_dims.iter().product()),
                _ => None,
            }) else {
                continue;
            };
            let mut out = self.steps[i].output();
            let mut epilogue = match &self.steps[i] {
                Step::Conv(c) => c.epilogue.clone(),
                Step::Contract(c) => c.epilogue.clone(),
                _ => unreachable!(),
            };
            for j in i + 1..self.steps.len() {
                if removed[j] || readers[out] != 1 {
                    break;
                }
                let Step::Binary { op, a, b, out: next, dims, a_strides, b_strides } = &self.steps[j] else {
                    if self.steps[j].inputs().contains(&out) {
                        break;
                    }
                    continue;
                };
                let (other, other_strides) = match (*a == out, *b == out) {
                    (true, false) => (*b, b_strides),
                    (false, true) => (*a, a_strides),
                    (false, false) => continue,
                    (true, true) => break,
                };
                let mine = if *a == out { a_strides } else { b_strides };
                // the fused step must read our value element for element, and the other operand must be constant
                if dims.iter().product::<usize>() != len || *mine != strides_of(dims) {
                    break;
                }
                let Some(data) = &self.buffers[other].data else { break };
                let scalar = other_strides.iter().all(|&s| s == 0);
                match op {
                    BinaryOp::Add
                        if epilogue.add.is_none()
                            && epilogue.lo == f32::NEG_INFINITY
                            && epilogue.hi == f32::INFINITY =>
                    {
                        epilogue.add = Some((other, dims.clone(), other_strides.clone()));
                    }
                    BinaryOp::Max if scalar && !data[0].is_nan() => epilogue.lo = epilogue.lo.max(data[0]),
                    BinaryOp::Min if scalar && !data[0].is_nan() => epilogue.hi = epilogue.hi.min(data[0]),
                    _ => break,
                }
                if epilogue.lo > epilogue.hi {
                    break;
                }
                readers[out] -= 1;
                out = *next;
                removed[j] = true;
            }
            match &mut self.steps[i] {
                Step::Conv(c) => {
                    c.out = out;
                    c.epilogue = epilogue;
                }
                Step::Contract(c) => {
                    c.out = out;
                    c.epilogue = epilogue;
                }
                _ => unreachable!(),
            }
        }
        let mut k = 0;
        self.steps.retain(|_| {
            k += 1;
            !removed[k - 1]
        });
    }

    /// Let activations share buffers: each step's output takes a free buffer (one whose every reader has
    /// run, never one this step reads), so memory is the peak of live tensors, not their sum (the shipped
    /// model: 119 MB of activations without this). Constants, the input and the outputs keep their own.
    pub fn share_buffers(&mut self) {
        let n = self.buffers.len();
        let mut last_use = vec![0usize; n];
        for (i, step) in self.steps.iter().enumerate() {
            for b in step.inputs() {
                last_use[b] = i;
            }
        }
        let pinned =
            |b: usize| self.buffers[b].data.is_some() || b == self.input || self.outputs.iter().any(|o| o.0 == b);
        // physical slot per buffer, and the slots' sizes
        let mut slot_of: Vec<Option<usize>> = vec![None; n];
        let mut sizes: Vec<usize> = vec![];
        let mut free: Vec<usize> = vec![];
        let mut live: Vec<usize> = vec![]; // buffers holding a slot
        for (i, step) in self.steps.iter().enumerate() {
            live.retain(|&b| {
                let done = last_use[b] < i;
                if done {
                    free.push(slot_of[b].expect("live buffers have slots"));
                }
                !done
            });
            let out = step.output();
            if pinned(out) || slot_of[out].is_some() {
                continue;
            }
            let len = self.buffers[out].len;
            // the smallest free slot that fits, else the largest free one grown, else a new one
            let pick = free
                .iter()
                .enumerate()
                .filter(|(_, s)| sizes[**s] >= len)
                .min_by_key(|(_, s)| sizes[**s])
                .or_else(|| free.iter().enumerate().max_by_key(|(_, s)| sizes[**s]))
                .map(|(k, _)| k);
            let slot = match pick {
                Some(k) => free.swap_remove(k),
                None => {
                    sizes.push(0);
                    sizes.len() - 1
                }
            };
            sizes[slot] = sizes[slot].max(len);
            slot_of[out] = Some(slot);
            live.push(out);
        }
        // new buffer list: the slots first, then every pinned buffer; buffers nothing reads or writes any
        // more (a fused step's intermediate) are dropped
        let mut used = vec![false; n];
        for step in &self.steps {
            used[step.output()] = true;
            step.inputs().into_iter().for_each(|b| used[b] = true);
        }
        used[self.input] = true;
        self.outputs.iter().for_each(|o| used[o.0] = true);
        let mut buffers: Vec<Buffer> = sizes.iter().map(|&len| Buffer { len, data: None }).collect();
        let mut map = vec![usize::MAX; n];
        for b in (0..n).filter(|&b| used[b]) {
            map[b] = match slot_of[b] {
                Some(slot) => slot,
                None => {
                    buffers.push(std::mem::replace(&mut self.buffers[b], Buffer { len: 0, data: None }));
                    buffers.len() - 1
                }
            };
        }
        for step in &mut self.steps {
            step.remap(&map);
        }
        self.input = map[self.input];
        for o in &mut self.outputs {
            o.0 = map[o.0];
        }
        self.buffers = buffers;
    }

    /// Total f32 values held by activations and constants.
    pub fn floats(&self) -> (usize, usize) {
        let constants = self.buffers.iter().filter(|b| b.data.is_some()).map(|b| b.len).sum();
        let activations = self.buffers.iter().filter(|b| b.data.is_none()).map(|b| b.len).sum();
        (activations, constants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain x → neg → exp → neg → abs → sigmoid (output), plus one broadcast add that reads two
    /// intermediates.
    fn chain() -> Plan {
        let mut buffers = vec![Buffer { len: 8, data: None }; 7];
        buffers.push(Buffer { len: 1, data: Some(vec![0.25]) });
        let u = |op, x, out| Step::Unary { op, x, out, len: 8 };
        let steps = vec![
            u(UnaryOp::Neg, 0, 1),
            u(UnaryOp::Exp, 1, 2),
            Step::Binary {
                op: BinaryOp::Add,
                a: 2,
                b: 7,
                out: 3,
                dims: vec![8],
                a_strides: vec![1],
                b_strides: vec![0],
            },
            u(UnaryOp::Neg, 3, 4),
            Step::Binary {
                op: BinaryOp::Mul,
                a: 4,
                b: 2,
                out: 5,
                dims: vec![8],
                a_strides: vec![1],
                b_strides: vec![1],
            },
            u(UnaryOp::Sigmoid, 5, 6),
        ];
        Plan { buffers, steps, input: 0, outputs: vec![(6, vec![8])] }
    }

    /// x [2, 3] summed over nothing (a copy) → + bias [3] → max 0 → min 6 → sigmoid, and the same sum read
    /// by a second step (so it must not fuse).
    fn fusable(second_reader: bool) -> Plan {
        let mut buffers = vec![Buffer { len: 6, data: None }; 6];
        buffers.push(Buffer { len: 3, data: Some(vec![1.0, -2.0, 5.0]) }); // 6: bias
        buffers.push(Buffer { len: 1, data: Some(vec![0.0]) }); // 7
        buffers.push(Buffer { len: 1, data: Some(vec![6.0]) }); // 8
        buffers.push(Buffer { len: 6, data: None }); // 9: second reader's output
        let bin = |op, a, b, out, b_strides: Vec<usize>| Step::Binary {
            op,
            a,
            b,
            out,
            dims: vec![2, 3],
            a_strides: vec![3, 1],
            b_strides,
        };
        let mut steps = vec![
            Step::Contract(ContractStep {
                acc: Accumulate::Sum,
                a: 0,
                b: None,
                out: 1,
                out_dims: vec![2, 3],
                a_out: vec![3, 1],
                b_out: vec![0, 0],
                sum_dims: vec![],
                a_sum: vec![],
                b_sum: vec![],
                epilogue: Epilogue::default(),
            }),
            bin(BinaryOp::Add, 1, 6, 2, vec![0, 1]),
            bin(BinaryOp::Max, 2, 7, 3, vec![0, 0]),
            bin(BinaryOp::Min, 3, 8, 4, vec![0, 0]),
            Step::Unary { op: UnaryOp::Sigmoid, x: 4, out: 5, len: 6 },
        ];
        let mut outputs = vec![(5, vec![2, 3])];
        if second_reader {
            steps.push(Step::Unary { op: UnaryOp::Neg, x: 1, out: 9, len: 6 });
            outputs.push((9, vec![2, 3]));
        }
        Plan { buffers, steps, input: 0, outputs }
    }

    #[test]
    fn bias_and_clamp_fold_into_the_step_before_them() {
        let input = vec![-3.0, 0.5, 2.0, 4.0, 9.0, -0.25];
        for second_reader in [false, true] {
            let plain = fusable(second_reader);
            let mut fused = fusable(second_reader);
            fused.fuse_epilogues();
            let want = super::super::reference::run(&plain, &input).unwrap();
            assert_eq!(super::super::reference::run(&fused, &input).unwrap(), want);
            // alone, the add and both clamps fold into the contraction; with a second reader of its value,
            // nothing may fold
            let expected_steps = if second_reader { 6 } else { 2 };
            assert_eq!(fused.steps.len(), expected_steps, "{:?}", fused.steps);
        }
        // the values themselves: sigmoid(clamp(x + bias, 0, 6))
        let got = super::super::reference::run(&fusable(false), &input).unwrap().remove(0).1;
        let bias = [1.0f32, -2.0, 5.0];
        for (k, g) in got.iter().enumerate() {
            let v = (input[k] + bias[k % 3]).clamp(0.0, 6.0);
            assert!((g - 1.0 / (1.0 + (-v).exp())).abs() < 1e-6);
        }
    }

    #[test]
    fn shared_buffers_give_the_same_outputs_with_fewer_buffers() {
        let input: Vec<f32> = (0..8).map(|i| i as f32 / 4.0 - 1.0).collect();
        let plain = chain();
        let mut shared = chain();
        shared.share_buffers();
        let want = super::super::reference::run(&plain, &input).unwrap();
        let got = super::super::reference::run(&shared, &input).unwrap();
        assert_eq!(want, got);
        // five intermediates, at most three alive at once (2 is read again by step 4)
        let activations = shared.buffers.iter().filter(|b| b.data.is_none()).count();
        assert!(activations <= 5, "{activations} activation buffers (input, output, ≤ 3 shared)");
        assert!(shared.buffers.iter().any(|b| b.data == Some(vec![0.25])), "constants keep their data");
        // no step writes a buffer it reads (WebGPU forbids it within one dispatch)
        for step in &shared.steps {
            assert!(!step.inputs().contains(&step.output()), "{step:?}");
        }
    }
}
