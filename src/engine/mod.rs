//! Engines run the model file. They all return the same raw outputs; everything after is shared.

pub mod cpu;
pub mod qdq;

use crate::error::Result;

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
}
