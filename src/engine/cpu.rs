//! The CPU engine: tract running the ONNX file (int8 QDQ weights are folded to f32 at load, by
//! `qdq::fold_constant_dequantize` before tract builds the graph).

use tract_onnx::prelude::*;

use web_time::Instant;

use super::{Engine, LoadTimings, OutputSpec, RawOutputs};
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
        let plan = typed.into_optimized().and_then(|m| m.into_runnable()).map_err(prepare)?;
        timings.optimise = ms(t);
        // The optimised graph knows every output shape for this input size: check them against the manifest
        // before any user image (no probe inference: that would cost a whole model step at start-up).
        let shapes = (0..5)
            .map(|k| {
                let fact = plan.model().output_fact(k).map_err(mismatch)?;
                fact.shape.as_concrete().map(|s| s.to_vec()).ok_or_else(|| {
                    let name = manifest.outputs.names()[k];
                    Error::ModelMismatch(format!("output `{name}` has no fixed shape for a fixed input"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let spec = OutputSpec::of(manifest);
        spec.check(&shapes)?;
        Ok(CpuEngine { plan, shape, spec })
    }
}

impl Engine for CpuEngine {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
        let n: usize = self.shape.iter().product();
        if input.len() != n {
            return Err(Error::Inference(format!("input has {} values, expected {n}", input.len())));
        }
        let tensor = tract_ndarray::Array4::from_shape_vec(self.shape, input.to_vec())
            .map_err(|e| Error::Inference(e.to_string()))?;
        let out = self.plan.run(tvec!(Tensor::from(tensor).into())).map_err(|e| Error::Inference(format!("{e:#}")))?;
        let outputs = (0..5)
            .map(|k| {
                let t = out[k]
                    .to_plain_array_view::<f32>()
                    .map_err(|e| Error::ModelMismatch(format!("output `{}` is not f32: {e:#}", self.spec.names[k])))?;
                Ok((t.shape().to_vec(), t.iter().copied().collect()))
            })
            .collect::<Result<Vec<_>>>()?;
        self.spec.raw_outputs(outputs)
    }
}
