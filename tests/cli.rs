//! The CLI contract that kiosks and batch tools parse.

mod common;
use std::process::Command;

use common::fixture;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xray-reader"))
}

#[test]
fn json_batch_keeps_input_order_and_goes_on_past_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let missing = dir.path().join("missing.png");
    let files = [fixture("nih-pneumonia.jpg"), bad.clone(), fixture("kermany-normal.jpeg"), missing.clone()];
    let out = bin().arg("read").arg("--json").args(&files).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "exit 1 when any file could not be read");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for (line, file) in lines.iter().zip(&files) {
        assert_eq!(line["file"].as_str().unwrap(), file.to_string_lossy());
    }
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["error"], serde_json::Value::Null);
    assert_eq!(lines[0]["accepted"], true);
    let f = &lines[0]["findings"][0];
    assert_eq!(f["label"], "abnormal");
    assert_eq!(f["positive"], true);
    assert!(f["probability"].as_f64().unwrap() >= f["threshold"].as_f64().unwrap());
    assert_eq!(f["peak"].as_array().unwrap().len(), 2);
    let region = &f["regions"][0];
    for k in ["x", "y", "w", "h", "score"] {
        assert!(region[k].is_number(), "region field {k}");
    }
    assert_eq!(lines[0]["film"]["corners"].as_array().unwrap().len(), 4);
    assert!(lines[0]["ood_score"].is_number());
    assert_eq!(lines[0]["engine"], "cpu");
    assert_eq!(lines[0]["model"]["sha256"].as_str().unwrap().len(), 64);
    assert!(lines[0]["timings_ms"]["total"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["quality"].is_array());
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["error"]["kind"], "corrupt");
    assert!(lines[1]["error"]["message"].as_str().unwrap().len() > 5);
    assert_eq!(lines[2]["ok"], true);
    assert_eq!(lines[2]["findings"][0]["positive"], false);
    assert_eq!(lines[3]["error"]["kind"], "io");
}

#[test]
fn all_good_files_exit_zero_and_refusals_are_still_reads() {
    let out = bin()
        .args(["read", "--json", "--jobs", "2"])
        .arg(fixture("kermany-normal.jpeg"))
        .arg(fixture("not-xray-astronaut.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[1]["ok"], true);
    assert_eq!(lines[1]["accepted"], false);
    assert!(lines[1]["findings"][0]["probability"].is_number(), "refusals keep findings for audit");
    assert!(lines[1]["findings"][0]["peak"].is_array());
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(bin().output().unwrap().status.code(), Some(2));
    assert_eq!(bin().args(["read"]).output().unwrap().status.code(), Some(2));
    let out = bin().args(["read", "--corners", "1,2,3"]).arg(fixture("nih-normal.jpg")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("8 finite numbers"));
    let help = bin().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let h = String::from_utf8_lossy(&help.stdout);
    assert!(h.contains("not a diagnosis") && h.contains("Exit status"));
}

#[test]
fn the_engine_can_be_chosen_and_a_missing_gpu_leaves_the_read_to_the_cpu() {
    let file = fixture("nih-pneumonia.jpg");
    let cpu = bin().args(["read", "--json", "--engine", "cpu"]).arg(&file).output().unwrap();
    assert_eq!(cpu.status.code(), Some(0));
    let cpu: serde_json::Value = serde_json::from_slice(&cpu.stdout).unwrap();
    assert_eq!(cpu["engine"], "cpu");
    assert_eq!(bin().args(["read", "--engine", "tpu"]).arg(&file).output().unwrap().status.code(), Some(2));
    // `gpu` reads on a hardware GPU where this build has the engine and the machine has one; anywhere else
    // (CI: no GPU, or a software Vulkan only) the read still completes, on the CPU, and says why
    let gpu = bin().args(["read", "--json", "--engine", "gpu"]).arg(&file).output().unwrap();
    assert_eq!(gpu.status.code(), Some(0));
    let gpu: serde_json::Value = serde_json::from_slice(&gpu.stdout).unwrap();
    assert_eq!(gpu["findings"][0]["positive"], cpu["findings"][0]["positive"]);
    if gpu["engine"] == "cpu" {
        let note = gpu["engine_note"].as_str().unwrap_or_default();
        assert!(note.contains("GPU") && note.contains("read on the CPU"), "{note}");
    } else {
        assert_eq!(gpu["engine"], "gpu");
    }
    // `auto` picks without a note
    let out = bin().args(["read", "--json", "--engine", "auto"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let auto: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(auto["engine"] == "cpu" || auto["engine"] == "gpu");
    assert_eq!(auto["engine_note"], serde_json::Value::Null);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("reading on the {}", auto["engine"].as_str().unwrap().to_uppercase())), "{said}");
}

#[test]
fn human_summary_and_overlays() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["read", "--overlay"])
        .arg(dir.path())
        .arg(fixture("photo-nih-pneumonia.jpg"))
        .arg(fixture("inverted-nih-normal.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FLAGGED for clinician review"), "{text}");
    assert!(text.contains("film found and flattened"), "{text}");
    assert!(text.contains("NOT READ") && text.contains("[inverted]"), "{text}");
    for name in ["photo-nih-pneumonia.overlay.png", "inverted-nih-normal.overlay.png"] {
        let img = image::open(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(img.width() > 100);
    }
    // the overlay of a positive read is coloured by the heatmap; the input photo is a grey film on a background
    let photo = image::open(dir.path().join("photo-nih-pneumonia.overlay.png")).unwrap().to_rgb8();
    let red = photo.pixels().filter(|p| p[0] > 200 && p[1] < 80 && p[2] < 80).count();
    assert!(red > 100, "region outlines / hot heatmap drawn");
}

#[test]
fn info_prints_the_manifest_and_a_custom_model_loads_by_path() {
    let out = bin().arg("info").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["label"], "abnormal");
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bin()
        .args(["read", "--json", "--model"])
        .arg(root.join("models/xray-reader.onnx"))
        .arg(fixture("nih-normal.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = tempfile::tempdir().unwrap();
    let tampered = dir.path().join("m.onnx");
    let mut b = std::fs::read(root.join("models/xray-reader.onnx")).unwrap();
    b[1000] ^= 1;
    std::fs::write(&tampered, b).unwrap();
    std::fs::copy(root.join("models/xray-reader.manifest.json"), dir.path().join("m.manifest.json")).unwrap();
    let out = bin().args(["read", "--model"]).arg(&tampered).arg(fixture("nih-normal.jpg")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"));
}
