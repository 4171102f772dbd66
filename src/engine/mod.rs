//! Engines run the model file. They all return the same raw outputs; everything after is shared.

pub mod check;
pub mod cpu;
#[cfg(any(target_arch = "wasm32", feature = "native-gpu"))]
pub mod kernels;
#[cfg(all(not(target_arch = "wasm32"), feature = "native-gpu"))]
pub mod native_gpu;
pub mod plan;
pub mod qdq;
pub mod reference;
#[cfg(target_arch = "wasm32")]
pub mod wasm_gemm;
#[cfg(target_arch = "wasm32")]
pub mod webgpu;

use tract_onnx::prelude::*;
use web_time::Instant;

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Everything one forward pass yields, already checked against the manifest's shapes.
#[derive(Debug, Clone)]
pub struct RawOutputs {
    /// One probability per finding, in manifest order.
    pub probabilities: Vec<f32>,
    /// Per-finding class-activation maps, row-major [finding][y][x], as per-location logits.
    pub cam: Vec<f32>,
    pub cam_height: usize,
    pub cam_width: usize,
    /// Softmax over the manifest's orientation classes.
    pub orientation: Vec<f32>,
    /// Probability that the image is a negative (inverted greys).
    pub inverted: f32,
    /// Pooled features for the out-of-distribution check.
    pub embedding: Vec<f32>,
    /// Per-cell opacity logits on the CAM's grid, row-major, when the model has that output.
    pub opacity: Option<Vec<f32>>,
}

impl RawOutputs {
    pub fn cam_of(&self, finding: usize) -> &[f32] {
        let n = self.cam_height * self.cam_width;
        &self.cam[finding * n..(finding + 1) * n]
    }
}

/// Where start-up time went, in milliseconds (the cold-start breakdown in BENCHMARKS.md).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadTimings {
    /// Parsing and checking the manifest.
    pub manifest: f64,
    /// sha256 of the model bytes.
    pub checksum: f64,
    /// Decoding the ONNX protobuf.
    pub parse: f64,
    /// Folding constant int8 weights to f32 (`qdq`).
    pub fold: f64,
    /// Building and typing the graph.
    pub graph: f64,
    /// Optimising it into a runnable plan.
    pub optimise: f64,
    pub total: f64,
}

pub trait Engine: Send + Sync {
    /// Short name reported in `Report::engine` ("cpu", "webgpu").
    fn name(&self) -> &'static str;
    /// Run on one preprocessed input, `channels * height * width` floats, row-major.
    fn infer(&self, input: &[f32]) -> Result<RawOutputs>;
    /// Where one forward pass spends its time, op by op (benchmark tooling; engines that cannot time
    /// their steps say so).
    fn profile(&self, _input: &[f32], _runs: usize) -> Result<Vec<OpTime>> {
        Err(Error::BackendUnavailable(format!("the {} engine has no per-op profile", self.name())))
    }
}

/// A shared engine is an engine (a caller that keeps a handle on the engine it gave a reader: tests, tools).
impl<E: Engine + ?Sized> Engine for std::sync::Arc<E> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
        (**self).infer(input)
    }
    fn profile(&self, input: &[f32], runs: usize) -> Result<Vec<OpTime>> {
        (**self).profile(input, runs)
    }
}

/// Time spent in one kind of step of a forward pass: summed over its nodes, median over runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpTime {
    /// The engine's name for the op followed by its output shape (one stage's nodes share a row).
    pub op: String,
    /// Nodes of this kind in one pass.
    pub nodes: usize,
    /// Milliseconds per pass (median over runs of the per-pass sum).
    pub ms: f64,
}

/// Parse the ONNX file, fold its constant int8 weights, check its input and outputs against the manifest and
/// type the graph for the manifest's input size: the starting point of every engine. Fills `parse`, `fold`
/// and `graph` of `timings`.
pub fn typed_model(onnx: &[u8], manifest: &Manifest, timings: &mut LoadTimings) -> Result<TypedModel> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let mismatch = |e: TractError| Error::ModelMismatch(format!("{e:#}"));
    let not_loadable = |e: TractError| Error::ModelMismatch(format!("not a loadable ONNX model: {e:#}"));
    let i = &manifest.input;
    let shape = [1, i.channels as usize, i.height as usize, i.width as usize];
    let t = Instant::now();
    let framework = tract_onnx::onnx();
    let mut proto = framework.proto_model_for_read(&mut std::io::Cursor::new(onnx)).map_err(not_loadable)?;
    timings.parse = ms(t);
    let t = Instant::now();
    qdq::fold_constant_dequantize(&mut proto);
    timings.fold = ms(t);
    let t = Instant::now();
    let mut model = framework.model_for_proto_model(&proto).map_err(not_loadable)?;
    drop(proto);
    let input_names: Vec<String> =
        model.input_outlets().map_err(mismatch)?.iter().map(|o| model.node(o.node).name.clone()).collect();
    if input_names != [i.name.clone()] {
        return Err(Error::ModelMismatch(format!("model inputs are {input_names:?}, manifest expects [{:?}]", i.name)));
    }
    model
        .select_outputs_by_name(manifest.outputs.names())
        .map_err(|e| Error::ModelMismatch(format!("outputs named in the manifest: {e:#}")))?;
    model.set_input_fact(0, f32::fact(shape).into()).map_err(mismatch)?;
    let typed = model.into_typed().map_err(|e| Error::ModelMismatch(format!("cannot prepare the model: {e:#}")))?;
    timings.graph = ms(t);
    Ok(typed)
}

/// tract's declutter in two rounds: first without its `ChangeAxes` pass, then tract's full declutter on the
/// result. It reaches the graph tract's single round gives (op for op, bitwise the same outputs: `tests/model.rs`)
/// in about two thirds of the time. In one round `ChangeAxes` searches the graph before the other passes have
/// folded it, and each axis change it makes sends every pass over the graph again; on the folded graph it has
/// ~24 changes to make (natively ~9 ms). The pass must run: it drops the batch axis and, in the wasm build, puts
/// the depthwise convolutions' channels last, without which they run several times slower (BENCHMARKS.md
/// sessions 20, 23 and 26). Both engines use it.
pub fn declutter(model: &mut TypedModel) -> TractResult<()> {
    let mut first = tract_onnx::tract_core::optim::Optimizer::declutter();
    first.passes.retain(|pass| !is_change_axes(&format!("{pass:?}")));
    first.optimize(model)?;
    model.declutter()
}

fn is_change_axes(pass: &str) -> bool {
    pass.starts_with("ChangeAxes")
}

/// What the manifest says the outputs look like (five, or six with `opacity`); turns any engine's raw
/// tensors into `RawOutputs`.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub names: Vec<String>,
    findings: usize,
    orientations: usize,
    embedding: usize,
    /// The CAM grid (rows, columns) the manifest's lung prior is on, when it has one.
    cam_grid: Option<[usize; 2]>,
}

impl OutputSpec {
    pub fn of(manifest: &Manifest) -> OutputSpec {
        OutputSpec {
            names: manifest.outputs.names().into_iter().map(str::to_owned).collect(),
            findings: manifest.findings.len(),
            orientations: manifest.orientation.classes_deg_clockwise.len(),
            embedding: manifest.ood.mean.len(),
            cam_grid: manifest.regions.lung_prior_grid(),
        }
    }

    /// Output shapes (probabilities, cam, orientation, inverted, embedding[, opacity]) against what the manifest
    /// declares. An opacity map has the CAM's grid, and so has a lung prior.
    pub fn check(&self, shapes: &[Vec<usize>]) -> Result<()> {
        let f = self.findings;
        let shape_err = |k: usize| {
            Err(Error::ModelMismatch(format!(
                "output `{}` has shape {:?}, inconsistent with the manifest",
                self.names[k], shapes[k]
            )))
        };
        if shapes.len() != self.names.len() {
            return Err(Error::ModelMismatch(format!(
                "the model has {} outputs, expected {}",
                shapes.len(),
                self.names.len()
            )));
        }
        if shapes[0] != [1, f] {
            return shape_err(0);
        }
        let cs = &shapes[1];
        if cs.len() != 4 || cs[0] != 1 || cs[1] != f || cs[2] == 0 || cs[3] == 0 {
            return shape_err(1);
        }
        if self.cam_grid.is_some_and(|g| g != [cs[2], cs[3]]) {
            return Err(Error::ModelMismatch(format!(
                "output `{}` has a {}x{} grid, the manifest's regions.lung_prior {:?}",
                self.names[1], cs[2], cs[3], self.cam_grid
            )));
        }
        if shapes[2] != [1, self.orientations] {
            return shape_err(2);
        }
        if shapes[3].iter().product::<usize>() != 1 {
            return shape_err(3);
        }
        let embedding: usize = shapes[4].iter().product();
        if embedding != self.embedding {
            return Err(Error::ModelMismatch(format!(
                "embedding has {embedding} values, the manifest's OOD statistics {}",
                self.embedding
            )));
        }
        if shapes.len() > 5 && shapes[5] != [1, 1, cs[2], cs[3]] {
            return shape_err(5);
        }
        Ok(())
    }

    /// The output tensors (shape, values), in manifest order, checked and named.
    pub fn raw_outputs(&self, outputs: Vec<(Vec<usize>, Vec<f32>)>) -> Result<RawOutputs> {
        let shapes: Vec<Vec<usize>> = outputs.iter().map(|(s, _)| s.clone()).collect();
        self.check(&shapes)?;
        for (shape, values) in &outputs {
            if values.len() != shape.iter().product::<usize>() {
                return Err(Error::Inference("an output's length does not match its shape".into()));
            }
            if values.iter().any(|x| !x.is_finite()) {
                return Err(Error::Inference("the model produced non-finite values".into()));
            }
        }
        let mut values = outputs.into_iter().map(|(_, v)| v);
        let mut next = || values.next().unwrap_or_default();
        let (probabilities, cam, orientation, inverted, embedding) = (next(), next(), next(), next(), next());
        let opacity = values.next();
        Ok(RawOutputs {
            probabilities,
            cam,
            cam_height: shapes[1][2],
            cam_width: shapes[1][3],
            orientation,
            inverted: inverted[0],
            embedding,
            opacity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OutputSpec;
    use crate::error::Error;

    #[test]
    fn a_cam_off_the_lung_priors_grid_is_refused_at_load() {
        let spec = |cam_grid| OutputSpec {
            names: ["probabilities", "cam", "orientation", "inverted", "embedding"].map(String::from).to_vec(),
            findings: 1,
            orientations: 4,
            embedding: 3,
            cam_grid,
        };
        let shapes = |side: usize| vec![vec![1, 1], vec![1, 1, side, side], vec![1, 4], vec![1, 1], vec![1, 3]];
        assert!(spec(None).check(&shapes(7)).is_ok());
        assert!(spec(Some([7, 7])).check(&shapes(7)).is_ok());
        let e = spec(Some([14, 14])).check(&shapes(7)).unwrap_err();
        assert!(matches!(&e, Error::ModelMismatch(m) if m.contains("lung_prior")), "{e:?}");
    }

    #[test]
    fn the_pass_put_off_to_the_second_round_is_in_tracts_declutter_under_its_name() {
        // if tract renamed it, the first round would be tract's whole declutter: still correct, not faster
        let passes = tract_onnx::tract_core::optim::Optimizer::declutter().passes;
        let names: Vec<String> = passes.iter().map(|p| format!("{p:?}")).collect();
        assert_eq!(names.iter().filter(|n| super::is_change_axes(n)).count(), 1, "{names:?}");
    }
}
