//! The CPU engine: tract running the ONNX file (int8 QDQ weights are folded to f32 at load, by
//! `qdq::fold_constant_dequantize` before tract builds the graph).

use tract_onnx::prelude::*;

use web_time::Instant;

use super::{Engine, LoadTimings, RawOutputs};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

pub struct CpuEngine {
    plan: std::sync::Arc<TypedRunnableModel>,
    shape: [usize; 4],
    findings: usize,
    orientations: usize,
}

impl CpuEngine {
    /// Load and optimise the ONNX model; the caller has already verified its checksum. Fills the engine's
    /// part of `timings`.
    pub fn new(onnx: &[u8], manifest: &Manifest, timings: &mut LoadTimings) -> Result<CpuEngine> {
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let mismatch = |e: TractError| Error::ModelMismatch(format!("{e:#}"));
        let i = &manifest.input;
        let shape = [1, i.channels as usize, i.height as usize, i.width as usize];
        let not_loadable = |e: TractError| Error::ModelMismatch(format!("not a loadable ONNX model: {e:#}"));
        let t = Instant::now();
        let framework = tract_onnx::onnx();
        let mut proto = framework.proto_model_for_read(&mut std::io::Cursor::new(onnx)).map_err(not_loadable)?;
        timings.parse = ms(t);
        let t = Instant::now();
        super::qdq::fold_constant_dequantize(&mut proto);
        timings.fold = ms(t);
        let t = Instant::now();
        let mut model = framework.model_for_proto_model(&proto).map_err(not_loadable)?;
        drop(proto);
        let input_names: Vec<String> =
            model.input_outlets().map_err(mismatch)?.iter().map(|o| model.node(o.node).name.clone()).collect();
        if input_names != [i.name.clone()] {
            return Err(Error::ModelMismatch(format!(
                "model inputs are {input_names:?}, manifest expects [{:?}]",
                i.name
            )));
        }
        let o = &manifest.outputs;
        let wanted = [&o.probabilities, &o.cam, &o.orientation, &o.inverted, &o.embedding];
        model
            .select_outputs_by_name(wanted.iter().map(|s| s.as_str()))
            .map_err(|e| Error::ModelMismatch(format!("outputs named in the manifest: {e:#}")))?;
        model.set_input_fact(0, f32::fact(shape).into()).map_err(mismatch)?;
        let prepare = |e: TractError| Error::ModelMismatch(format!("cannot prepare the model: {e:#}"));
        let typed = model.into_typed().map_err(prepare)?;
        timings.graph = ms(t);
        let t = Instant::now();
        let plan = typed.into_optimized().and_then(|m| m.into_runnable()).map_err(prepare)?;
        timings.optimise = ms(t);
        let engine = CpuEngine {
            plan,
            shape,
            findings: manifest.findings.len(),
            orientations: manifest.orientation.classes_deg_clockwise.len(),
        };
        // The optimised graph knows every output shape for this input size: check them against the manifest
        // before any user image (no probe inference: that would cost a whole model step at start-up).
        let facts = (0..wanted.len())
            .map(|k| {
                let fact = engine.plan.model().output_fact(k).map_err(mismatch)?;
                fact.shape.as_concrete().map(|s| s.to_vec()).ok_or_else(|| {
                    Error::ModelMismatch(format!("output `{}` has no fixed shape for a fixed input", wanted[k]))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        engine.check_shapes(&facts[0], &facts[1], &facts[2], &facts[3])?;
        let embedding: usize = facts[4].iter().product();
        if embedding != manifest.ood.mean.len() {
            return Err(Error::ModelMismatch(format!(
                "embedding has {embedding} values, the manifest's OOD statistics {}",
                manifest.ood.mean.len()
            )));
        }
        Ok(engine)
    }

    /// Output shapes (probabilities, cam, orientation, inverted) against what the manifest declares.
    fn check_shapes(&self, ps: &[usize], cs: &[usize], os: &[usize], is: &[usize]) -> Result<()> {
        let f = self.findings;
        let shape_err = |what: &str, s: &[usize]| {
            Err(Error::ModelMismatch(format!("output `{what}` has shape {s:?}, inconsistent with the manifest")))
        };
        if ps != [1, f] {
            return shape_err("probabilities", ps);
        }
        if cs.len() != 4 || cs[0] != 1 || cs[1] != f || cs[2] == 0 || cs[3] == 0 {
            return shape_err("cam", cs);
        }
        if os != [1, self.orientations] {
            return shape_err("orientation", os);
        }
        if is.iter().product::<usize>() != 1 {
            return shape_err("inverted", is);
        }
        Ok(())
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
        let get = |k: usize, what: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = out[k]
                .to_plain_array_view::<f32>()
                .map_err(|e| Error::ModelMismatch(format!("output `{what}` is not f32: {e:#}")))?;
            Ok((t.shape().to_vec(), t.iter().copied().collect()))
        };
        let (ps, probabilities) = get(0, "probabilities")?;
        let (cs, cam) = get(1, "cam")?;
        let (os, orientation) = get(2, "orientation")?;
        let (is, inverted) = get(3, "inverted")?;
        let (_, embedding) = get(4, "embedding")?;
        self.check_shapes(&ps, &cs, &os, &is)?;
        if [&probabilities, &cam, &orientation, &inverted, &embedding].iter().any(|v| v.iter().any(|x| !x.is_finite()))
        {
            return Err(Error::Inference("the model produced non-finite values".into()));
        }
        Ok(RawOutputs {
            probabilities,
            cam,
            cam_height: cs[2],
            cam_width: cs[3],
            orientation,
            inverted: inverted[0],
            embedding,
        })
    }
}
