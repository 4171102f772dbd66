//! Any bytes: decode gives an image within the limits or a typed error; never a panic or a huge allocation.
//! The header-only size (`declared_size`, which the browser worker asks first) never panics either, and
//! agrees with the decoded image when both succeed (up to an EXIF quarter turn, which swaps the sides).
#![no_main]
use libfuzzer_sys::fuzz_target;
use xray_reader::decode::{DecodeLimits, decode, declared_size};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    let declared = declared_size(data);
    if let Ok(img) = decode(data, &limits) {
        let (w, h) = img.dimensions();
        assert!(w as u64 * h as u64 <= limits.max_pixels);
        if let Some((dw, dh)) = declared {
            assert!((dw, dh) == (w, h) || (dh, dw) == (w, h), "header {dw}x{dh}, decoded {w}x{h}");
        }
    }
});
