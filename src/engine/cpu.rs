//! The CPU engine: tract running the ONNX file (int8 QDQ weights are folded to f32 at load, by
//! `qdq::fold_constant_dequantize` before tract builds the graph).

use tract_onnx::prelude::*;

use web_time::Instant;

use super::{Engine, LoadTimings, OpTime, OutputSpec, RawOutputs};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

pub struct CpuEngine {
    plan: std::sync::Arc<TypedRunnableModel>,
    shape: [usize; 4],
    spec: OutputSpec,
}

impl CpuEngine {
    /// Load and optimise the ONNX model; the caller has already verified its checksum. Fills the engine's
    /// part of `timings`.
    pub fn new(onnx: &[u8], manifest: &Manifest, timings: &mut LoadTimings) -> Result<CpuEngine> {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let mismatch = |e: TractError| Error::ModelMismatch(format!("{e:#}"));
        let i = &manifest.input;
        let shape = [1, i.channels as usize, i.height as usize, i.width as usize];
        let prepare = |e: TractError| Error::ModelMismatch(format!("cannot prepare the model: {e:#}"));
        let typed = super::typed_model(onnx, manifest, timings)?;
        let t = Instant::now();
        let plan = optimise(typed).and_then(|m| m.into_runnable()).map_err(prepare)?;
        timings.optimise = ms(t);
        // The optimised graph knows every output shape for this input size: check them against the manifest
        // before any user image (no probe inference: that would cost a whole model step at start-up).
        let spec = OutputSpec::of(manifest);
        let shapes = (0..spec.names.len())
            .map(|k| {
                let fact = plan.model().output_fact(k).map_err(mismatch)?;
                fact.shape.as_concrete().map(|s| s.to_vec()).ok_or_else(|| {
                    let name = &spec.names[k];
                    Error::ModelMismatch(format!("output `{name}` has no fixed shape for a fixed input"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        spec.check(&shapes)?;
        Ok(CpuEngine { plan, shape, spec })
    }
}

/// tract's `into_optimized` with its declutter in two rounds (`engine::declutter`), then tract's codegen. Its
/// declutter pass `ChangeAxes` must run: it drops the batch axis (and the wasm build's plan then has channels
/// last); on the ONNX file's own layout, a batch axis and channels first, wasm's depthwise convolution is
/// several times slower. Leaving the pass out cost the model step its lead over onnxruntime-web, twice
/// (sessions 20 and 23; BENCHMARKS.md session 26). `tests/model.rs` holds the plan to the batch-free layout and
/// to what `into_optimized` computes.
pub fn optimise(mut model: TypedModel) -> TractResult<TypedModel> {
    super::declutter(&mut model)?;
    model.optimize()?;
    Ok(model)
}

impl CpuEngine {
    fn tensor(&self, input: &[f32]) -> Result<Tensor> {
        let n: usize = self.shape.iter().product();
        if input.len() != n {
            return Err(Error::Inference(format!("input has {} values, expected {n}", input.len())));
        }
        let array = tract_ndarray::Array4::from_shape_vec(self.shape, input.to_vec())
            .map_err(|e| Error::Inference(e.to_string()))?;
        Ok(array.into())
    }
}

/// The threaded wasm experiment (`threads`), once its pool has started (`useThreadPool`): the model runs on
/// one of the pool's threads, so that the thread running it takes its share of every split op and the others
/// join in, instead of this thread waiting while the pool works (fewer threads than cores then compute, and
/// every op pays for waking the pool from outside it). Elsewhere it just runs `f`.
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
fn in_thread_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tract_linalg::multithread::{Executor, current_tract_executor};
    match current_tract_executor() {
        Executor::RayonGlobal => rayon::scope(|_| f()),
        _ => f(),
    }
}

#[cfg(not(all(target_arch = "wasm32", feature = "threads")))]
fn in_thread_pool<R>(f: impl FnOnce() -> R) -> R {
    f()
}

impl Engine for CpuEngine {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
        let input = self.tensor(input)?;
        let out =
            in_thread_pool(|| self.plan.run(tvec!(input.into()))).map_err(|e| Error::Inference(format!("{e:#}")))?;
        let outputs = (0..self.spec.names.len())
            .map(|k| {
                let t = out[k]
                    .to_plain_array_view::<f32>()
                    .map_err(|e| Error::ModelMismatch(format!("output `{}` is not f32: {e:#}", self.spec.names[k])))?;
                Ok((t.shape().to_vec(), t.iter().copied().collect()))
            })
            .collect::<Result<Vec<_>>>()?;
        self.spec.raw_outputs(outputs)
    }

    /// Times every node of tract's optimised plan, grouped by op and output shape (so one stage's
    /// depthwise convolutions are one row).
    fn profile(&self, input: &[f32], runs: usize) -> Result<Vec<OpTime>> {
        use std::collections::BTreeMap;
        let failed = |e: TractError| Error::Inference(format!("{e:#}"));
        let tensor: TValue = self.tensor(input)?.into();
        let mut nodes: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_run: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for run in 0..runs.max(1) {
            let mut state = TypedSimpleState::new(&self.plan).map_err(failed)?;
            let mut sums: BTreeMap<String, f64> = BTreeMap::new();
            state
                .run_plan_with_eval(tvec!(tensor.clone()), |ctx, op_state, node, inputs| {
                    let t = Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    let shape = node.outputs.first().map(|o| format!("{:?}", o.fact.shape)).unwrap_or_default();
                    let key = format!("{} {shape}", node.op().name());
                    *sums.entry(key.clone()).or_default() += ms;
                    if run == 0 {
                        *nodes.entry(key).or_default() += 1;
                    }
                    out
                })
                .map_err(failed)?;
            for (k, v) in sums {
                per_run.entry(k).or_default().push(v);
            }
        }
        let mut rows: Vec<OpTime> = per_run
            .into_iter()
            .map(|(op, mut v)| {
                v.sort_by(f64::total_cmp);
                OpTime { nodes: nodes.get(&op).copied().unwrap_or(0), ms: v[v.len() / 2], op }
            })
            .collect();
        rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        Ok(rows)
    }
}
