//! Where the CPU engine's model step goes, op by op: `cargo run --release --example profile_model [film] [runs]`.
//! The browser's breakdown (wasm, the shipped build) comes from the benchmark page (`scripts/bench.sh`);
//! this is the native view of the same plan, for quick comparisons.

use xray_reader::reader::{ReadOptions, Reader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let film = args.next().unwrap_or_else(|| "tests/fixtures/nih-pneumonia.jpg".into());
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(20);
    let reader = Reader::bundled()?;
    let pending = reader.begin_bytes(&std::fs::read(&film)?, &ReadOptions::default())?;
    let rows = reader.profile(&pending.input, runs)?;
    let total: f64 = rows.iter().map(|r| r.ms).sum();
    println!("{film}: {total:.1} ms per pass (median of {runs} per row)");
    for r in &rows {
        println!("{:7.2} ms {:5.1} % {:3} × {}", r.ms, 100.0 * r.ms / total, r.nodes, r.op);
    }
    Ok(())
}
