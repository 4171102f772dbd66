//! xray-reader: an offline chest X-ray reader. A decision aid, not a diagnosis.
//!
//! Data flows one way: decode -> border -> film -> preprocess -> engine -> quality & regions -> report.

pub mod border;
pub mod clahe;
pub mod decode;
pub mod engine;
pub mod error;
pub mod film;
pub mod geometry;
pub mod manifest;
pub mod overlay;
pub mod preprocess;
pub mod quality;
pub mod reader;
pub mod regions;
pub mod report;
pub mod resample;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
pub use reader::{ReadOptions, Reader, Reading};
pub use report::Report;
