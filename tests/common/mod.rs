#![allow(dead_code)]
use std::path::PathBuf;
use std::sync::OnceLock;

use xray_reader::{ReadOptions, Reader, Reading};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub fn reader() -> &'static Reader {
    static R: OnceLock<Reader> = OnceLock::new();
    R.get_or_init(|| Reader::bundled().expect("bundled model loads"))
}

pub fn read(name: &str) -> Reading {
    let opts = ReadOptions { name: Some(name.into()), ..Default::default() };
    reader().read(&bytes(name), &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn meta() -> serde_json::Value {
    serde_json::from_slice(&bytes("fixtures.json")).expect("fixtures.json")
}

pub fn abnormal(r: &Reading) -> &xray_reader::report::Finding {
    r.report.findings.iter().find(|f| f.label == "abnormal").expect("abnormal finding always present")
}
