//! The whole read on arbitrary bytes with the bundled model: a report or a typed error, never a panic
//! (the reader's own panic guard is bypassed by checking for `internal` errors).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use xray_reader::{Error, ReadOptions, Reader};

static READER: OnceLock<Reader> = OnceLock::new();

fuzz_target!(
    // load and optimise the model once, before the first input is timed
    init: {
        READER.get_or_init(|| Reader::bundled().expect("bundled model"));
    },
    |data: &[u8]| {
    let reader = READER.get().expect("initialised");
    match reader.read(data, &ReadOptions::default()) {
        Ok(r) => assert!(r.report.findings.iter().all(|f| f.probability.is_finite())),
        Err(Error::Internal(msg)) => panic!("a panic was caught inside the reader: {msg}"),
        Err(_) => {}
    }
    }
);
