//! The f32 matrix-multiply micro-kernel of the browser build: a 4-row × 8-column tile (eight v128
//! accumulators), registered in tract-linalg's kernel registry with a dispatch tier that picks it for
//! every f32 GEMM, so tract runs the model as before and only the innermost loop is ours.
//!
//! Why: 90 % of the CPU engine's time in wasm is matrix products (the 1×1 convolutions), and tract's own
//! wasm GEMM kernel (8×8, sixteen accumulators) was measured at ~9.5 GMAC/s in Chromium on x86-64, where
//! V8 maps wasm SIMD values onto 16 xmm registers: sixteen accumulators plus the operands do not fit and
//! spill. Eight accumulators, two B vectors and one broadcast A value do. Per-kernel numbers (model step
//! 88.6 → 53.3 ms in Node 20 on the benchmark VM) are in BENCHMARKS.md. ARM64 (32 vector registers) has
//! not been measured; nothing there spills either way. The relaxed-SIMD build (scripts/build-web.sh builds
//! both; the page picks by feature detection) multiplies and adds in one fused instruction: the crate's
//! `relaxed-simd` feature enables the target feature on this kernel alone, so both builds share one compile
//! of tract and the other dependencies (their own relaxed-SIMD variants, tract's matrix-vector and int8
//! kernels, are not used; every f32 matrix product with more than one column comes here).
//!
//! The kernel implements every fused operation tract can hand an f32 kernel (its generic kernel is the
//! reference for their meaning); tests/wasm.rs holds it to a scalar model of each.
use std::arch::wasm32::*;
use std::sync::LazyLock;

use tract_linalg::isa::{Arch, IsaSet};
use tract_linalg::mmm::{DynKernel, FusedKerSpec, Query, Suitable};
use tract_linalg::pack::Packing;
use tract_onnx::prelude::DatumType;

/// One `R`-row × `4C`-column tile of f32 accumulators, `C` v128 per row (indexed loops: LLVM unrolls them
/// and keeps the accumulators in registers). A function with a target feature may not be `inline(always)`;
/// it has one caller, `f32_4x8`, with the same features, and is inlined there all the same.
#[cfg_attr(not(feature = "relaxed-simd"), inline(always))]
#[cfg_attr(feature = "relaxed-simd", inline, target_feature(enable = "relaxed-simd"))]
#[allow(clippy::needless_range_loop)]
unsafe fn kernel<const R: usize, const C: usize>(mut spec: *const FusedKerSpec<f32>) -> isize {
    let zero = f32x4_splat(0.0);
    let mut acc = [[zero; C]; R];
    macro_rules! each {
        (|$x:ident, $r:ident, $c:ident| $e:expr) => {
            for $r in 0..R {
                for $c in 0..C {
                    let $x = acc[$r][$c];
                    acc[$r][$c] = $e;
                }
            }
        };
    }
    unsafe {
        loop {
            match *spec {
                FusedKerSpec::Done => return 0,
                FusedKerSpec::Clear => acc = [[zero; C]; R],
                FusedKerSpec::LoadTile(_, rows) => {
                    let p = rows as *const v128;
                    each!(|_x, r, c| v128_load(p.add(r * C + c)))
                }
                FusedKerSpec::ScalarMin(s) => each!(|x, _r, _c| f32x4_pmin(x, f32x4_splat(s))),
                FusedKerSpec::ScalarMax(s) => each!(|x, _r, _c| f32x4_pmax(x, f32x4_splat(s))),
                FusedKerSpec::ScalarAdd(s) => each!(|x, _r, _c| f32x4_add(f32x4_splat(s), x)),
                FusedKerSpec::ScalarMul(s) => each!(|x, _r, _c| f32x4_mul(f32x4_splat(s), x)),
                FusedKerSpec::ScalarSub(s) => each!(|x, _r, _c| f32x4_sub(f32x4_splat(s), x)),
                FusedKerSpec::ScalarSubF(s) => each!(|x, _r, _c| f32x4_sub(x, f32x4_splat(s))),
                FusedKerSpec::LeakyRelu(s) => {
                    each!(|x, _r, _c| v128_bitselect(x, f32x4_mul(f32x4_splat(s), x), f32x4_gt(x, zero)))
                }
                FusedKerSpec::PerRowMin(p) => each!(|x, r, _c| f32x4_pmin(x, v128_load32_splat(p.add(r) as _))),
                FusedKerSpec::PerRowMax(p) => each!(|x, r, _c| f32x4_pmax(x, v128_load32_splat(p.add(r) as _))),
                FusedKerSpec::PerRowAdd(p) => each!(|x, r, _c| f32x4_add(v128_load32_splat(p.add(r) as _), x)),
                FusedKerSpec::PerRowMul(p) => each!(|x, r, _c| f32x4_mul(v128_load32_splat(p.add(r) as _), x)),
                FusedKerSpec::PerRowSub(p) => each!(|x, r, _c| f32x4_sub(v128_load32_splat(p.add(r) as _), x)),
                FusedKerSpec::PerRowSubF(p) => each!(|x, r, _c| f32x4_sub(x, v128_load32_splat(p.add(r) as _))),
                FusedKerSpec::PerColMin(p) => each!(|x, _r, c| f32x4_pmin(x, v128_load(p.add(4 * c) as _))),
                FusedKerSpec::PerColMax(p) => each!(|x, _r, c| f32x4_pmax(x, v128_load(p.add(4 * c) as _))),
                FusedKerSpec::PerColAdd(p) => each!(|x, _r, c| f32x4_add(v128_load(p.add(4 * c) as _), x)),
                FusedKerSpec::PerColMul(p) => each!(|x, _r, c| f32x4_mul(v128_load(p.add(4 * c) as _), x)),
                FusedKerSpec::PerColSub(p) => each!(|x, _r, c| f32x4_sub(v128_load(p.add(4 * c) as _), x)),
                FusedKerSpec::PerColSubF(p) => each!(|x, _r, c| f32x4_sub(x, v128_load(p.add(4 * c) as _))),
                FusedKerSpec::QScale(shift, rp, mult) => {
                    let s = f32x4_splat(tract_linalg::Scaler::from_fuse_params(shift, rp, mult).scale);
                    each!(|x, _r, _c| f32x4_mul(s, x))
                }
                FusedKerSpec::RoundingShiftRight(shift, _) => {
                    let s = f32x4_splat(2f32.powi(-(shift as i32)));
                    each!(|x, _r, _c| f32x4_mul(s, x))
                }
                FusedKerSpec::ShiftLeft(shift) => {
                    let s = f32x4_splat(2f32.powi(shift as i32));
                    each!(|x, _r, _c| f32x4_mul(s, x))
                }
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    each!(|x, r, c| f32x4_add(
                        x,
                        f32x4_mul(v128_load32_splat(rows.add(r) as _), v128_load(cols.add(4 * c) as _))
                    ))
                }
                FusedKerSpec::AddUnicast(tile) => {
                    if tile.item_size != 4 {
                        return 1;
                    }
                    each!(|x, r, c| f32x4_add(x, gather(tile.ptr, tile.row_byte_stride, tile.col_byte_stride, r, c)))
                }
                FusedKerSpec::Store(tile) => {
                    if tile.item_size != 4 {
                        return 1;
                    }
                    for r in 0..R {
                        let row = tile.ptr.offset(tile.row_byte_stride * r as isize);
                        for c in 0..C {
                            scatter(row, tile.col_byte_stride, c, acc[r][c]);
                        }
                    }
                }
                FusedKerSpec::AddMatMul { k, pa, pb, packing } => {
                    if packing != 0 {
                        return 1;
                    }
                    let mut a = pa as *const f32;
                    let mut b = pb as *const v128;
                    for _ in 0..k {
                        let mut bs = [zero; C];
                        for c in 0..C {
                            bs[c] = v128_load(b.add(c));
                        }
                        for r in 0..R {
                            let ar = v128_load32_splat(a.add(r) as _);
                            for c in 0..C {
                                acc[r][c] = madd(acc[r][c], ar, bs[c]);
                            }
                        }
                        a = a.add(R);
                        b = b.add(C);
                    }
                }
            }
            spec = spec.add(1);
        }
    }
}

/// `acc + a·b`: one fused multiply-add in the relaxed-SIMD build (whether it rounds once or twice is the
/// engine's choice, hence "relaxed"), a multiply and an add otherwise.
#[cfg_attr(not(feature = "relaxed-simd"), inline(always))]
#[cfg_attr(feature = "relaxed-simd", inline, target_feature(enable = "relaxed-simd"))]
fn madd(acc: v128, a: v128, b: v128) -> v128 {
    #[cfg(feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, acc);
    #[cfg(not(feature = "relaxed-simd"))]
    return f32x4_add(acc, f32x4_mul(a, b));
}

#[inline(always)]
unsafe fn gather(ptr: *const u8, row_stride: isize, col_stride: isize, r: usize, c: usize) -> v128 {
    unsafe {
        let p = ptr.offset(row_stride * r as isize + col_stride * (4 * c) as isize);
        if col_stride == 4 {
            v128_load(p as _)
        } else {
            f32x4(
                *(p as *const f32),
                *(p.offset(col_stride) as *const f32),
                *(p.offset(2 * col_stride) as *const f32),
                *(p.offset(3 * col_stride) as *const f32),
            )
        }
    }
}

#[inline(always)]
unsafe fn scatter(row: *mut u8, col_stride: isize, c: usize, v: v128) {
    unsafe {
        let p = row.offset(col_stride * (4 * c) as isize);
        if col_stride == 4 {
            v128_store(p as _, v);
        } else {
            *(p as *mut f32) = f32x4_extract_lane::<0>(v);
            *(p.offset(col_stride) as *mut f32) = f32x4_extract_lane::<1>(v);
            *(p.offset(2 * col_stride) as *mut f32) = f32x4_extract_lane::<2>(v);
            *(p.offset(3 * col_stride) as *mut f32) = f32x4_extract_lane::<3>(v);
        }
    }
}

/// The kernel function tract calls, one fused-op list per tile.
#[cfg_attr(feature = "relaxed-simd", target_feature(enable = "relaxed-simd"))]
unsafe fn f32_4x8(spec: &[FusedKerSpec<f32>]) -> isize {
    unsafe { kernel::<4, 2>(spec.as_ptr()) }
}

/// The 4×8 f32 kernel as tract-linalg sees it (packed A panels of 4 rows, B panels of 8 columns).
pub static F32_4X8: LazyLock<DynKernel<4, 8, f32>> = LazyLock::new(|| {
    let mut k = DynKernel::<4, 8, f32>::new(KERNEL_NAME, f32_4x8, f32::packing(4).align(16), f32::packing(8).align(16));
    k.arch = Some(Arch::Wasm32Simd128);
    k
});

/// Its name in tract's kernel registry (and in `MmmDispatch::pick`'s answer).
pub const KERNEL_NAME: &str = "xray_reader_f32_4x8";

inventory::submit! { tract_linalg::mmm_routines::MmmRoutine { make: || F32_4X8.mmm() } }

/// Every f32 matrix product with more than one column goes to the 4×8 kernel; matrix-vector
/// products (n = 1) and integer ones are left to tract's own wasm tier.
fn preferred(_isa: &IsaSet, dt: DatumType, query: &Query, _suitable: &[Suitable]) -> Option<&'static str> {
    match (dt, query.n) {
        (DatumType::F32, Some(1)) => None,
        (DatumType::F32, _) => Some(KERNEL_NAME),
        _ => None,
    }
}

inventory::submit! {
    tract_linalg::mmm_tiers::MmmTier {
        arch: Some(Arch::Wasm32Simd128),
        // above tract's own wasm tier (precedence 1): asked first, so its answer wins
        precedence: 2,
        name: "xray-reader-wasm-f32",
        applies: |_| true,
        preferred,
    }
}
