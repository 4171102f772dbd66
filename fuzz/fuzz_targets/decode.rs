//! Any bytes: decode gives an image within the limits or a typed error; never a panic or a huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xray_reader::decode::{DecodeLimits, decode};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(img) = decode(data, &limits) {
        let (w, h) = img.dimensions();
        assert!(w as u64 * h as u64 <= limits.max_pixels);
    }
});
