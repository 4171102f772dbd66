//! The WebGPU engine (wasm32 only): runs `plan::Plan` on the GPU through web-sys's WebGPU bindings, one
//! compute pipeline per step kind (`kernels`: the WGSL and each step's words, shared with `native_gpu`). Weights are
//! dequantized once at load (the same int8 fold as the CPU engine) and uploaded as f32; every step's
//! parameters and bindings are built at load, so a read is one upload, one command buffer and one readback.
//!
//! Why web-sys and not wgpu: the page has a 5 MB first-load budget with ~50 KB to spare, and this engine
//! needs only buffers and compute pipelines; the raw bindings cost a few KB where wgpu's wrapper would not
//! fit. Async: WebGPU answers through promises, so this engine is not behind the synchronous `Engine` trait;
//! the reader's `begin`/`advance` steps let it drive the same pipeline (`wasm.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Float32Array, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Gpu, GpuAdapter, GpuBindGroup, GpuBindGroupDescriptor, GpuBindGroupEntry, GpuBuffer, GpuBufferBinding,
    GpuBufferDescriptor, GpuComputePipeline, GpuComputePipelineDescriptor, GpuDevice, GpuErrorFilter,
    GpuProgrammableStage, GpuShaderModuleDescriptor, gpu_buffer_usage, gpu_map_mode,
};

use super::kernels::{Dispatch, KERNELS, MAX_BINDINGS, Readback, StandIn, bytes_of};
use super::plan::Plan;
use super::{OutputSpec, RawOutputs};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// One recorded dispatch: which pipeline, its bindings, its grid.
struct Pass {
    pipeline: usize,
    bind_group: GpuBindGroup,
    groups: [u32; 2],
}

pub struct GpuEngine {
    device: GpuDevice,
    pipelines: Vec<GpuComputePipeline>,
    passes: Vec<Pass>,
    input: GpuBuffer,
    input_len: usize,
    /// The output buffers, in `readback`'s order, and where their values go in `staging`.
    outputs: Vec<GpuBuffer>,
    readback: Readback,
    staging: GpuBuffer,
    spec: OutputSpec,
    /// Why the device went away, once it has.
    lost: Rc<RefCell<Option<String>>>,
    busy: Cell<bool>,
    /// Adapter description for reports and benchmarks.
    pub adapter: String,
    pub fallback_adapter: bool,
}

fn js_message(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| format!("{e:?}"))
}

fn unavailable(why: impl Into<String>) -> Error {
    Error::BackendUnavailable(why.into())
}

impl GpuEngine {
    /// Find an adapter, lower the model and set everything up. Any failure is `BackendUnavailable` with
    /// the reason (no WebGPU, no adapter, limits too small, an op without a kernel, a shader error).
    pub async fn new(onnx: &[u8], manifest: &Manifest) -> Result<GpuEngine> {
        let global = js_sys::global();
        let navigator = Reflect::get(&global, &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
        let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
        if gpu.is_undefined() || gpu.is_null() {
            return Err(unavailable("this browser has no WebGPU (navigator.gpu is missing)"));
        }
        let gpu: Gpu = gpu.unchecked_into();
        let adapter = gpu.request_adapter().await.map_err(|e| unavailable(js_message(&e)))?;
        let adapter: GpuAdapter =
            adapter.into_option().ok_or_else(|| unavailable("the browser offers no WebGPU adapter"))?;
        let info = adapter.info();
        let description = [info.vendor(), info.architecture(), info.description()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let fallback_adapter = info.is_fallback_adapter();
        let plan = Plan::load(onnx, manifest)?;
        let device = adapter.request_device().await.map_err(|e| unavailable(js_message(&e)))?;
        // the device has the default limits (128 MiB per storage binding, 8 storage buffers per stage)
        let limits = device.limits();
        let largest = plan.buffers.iter().map(|b| b.len * 4).max().unwrap_or(0);
        let (binding, per_stage) =
            (limits.max_storage_buffer_binding_size(), limits.max_storage_buffers_per_shader_stage());
        if largest as f64 > binding || per_stage < MAX_BINDINGS {
            device.destroy();
            return Err(unavailable(format!(
                "the GPU's limits are too small: storage bindings of {binding} bytes (the model needs {largest}), \
                 {per_stage} storage buffers per stage (needs {MAX_BINDINGS})"
            )));
        }
        let lost = Rc::new(RefCell::new(None));
        {
            let lost = lost.clone();
            let promise = device.lost();
            js_sys::futures::spawn_local(async move {
                let why = match promise.await {
                    Ok(info) => info.message(),
                    Err(e) => js_message(&e),
                };
                *lost.borrow_mut() = Some(if why.is_empty() { "the GPU device was lost".into() } else { why });
            });
        }
        device.push_error_scope(GpuErrorFilter::OutOfMemory);
        device.push_error_scope(GpuErrorFilter::Validation);
        let engine = GpuEngine::build(device, &plan, manifest, lost, description, fallback_adapter);
        let device = engine.as_ref().map(|e| e.device.clone());
        if let Ok(device) = device {
            for _ in 0..2 {
                let error = device.pop_error_scope().await.map_err(|e| unavailable(js_message(&e)))?;
                if let Some(error) = error.into_option() {
                    device.destroy();
                    return Err(unavailable(format!("setting up the GPU failed: {}", error.message())));
                }
            }
        }
        engine
    }

    fn build(
        device: GpuDevice,
        plan: &Plan,
        manifest: &Manifest,
        lost: Rc<RefCell<Option<String>>>,
        adapter: String,
        fallback_adapter: bool,
    ) -> Result<GpuEngine> {
        let setup = |e: JsValue| unavailable(format!("setting up the GPU failed: {}", js_message(&e)));
        let queue = device.queue();
        let new_buffer = |bytes: usize, usage: u32| -> Result<GpuBuffer> {
            let size = bytes.max(4).next_multiple_of(4) as u32;
            device.create_buffer(&GpuBufferDescriptor::new(size, usage)).map_err(setup)
        };
        let storage = gpu_buffer_usage::STORAGE | gpu_buffer_usage::COPY_DST | gpu_buffer_usage::COPY_SRC;
        let upload = |values: &[f32]| -> Result<GpuBuffer> {
            let buffer = new_buffer(values.len() * 4, storage)?;
            queue.write_buffer_with_u32_and_u8_slice(&buffer, 0, bytes_of(values)).map_err(setup)?;
            Ok(buffer)
        };
        let buffers = plan
            .buffers
            .iter()
            .map(|b| match &b.data {
                Some(data) => upload(data),
                None => new_buffer(b.len * 4, storage),
            })
            .collect::<Result<Vec<_>>>()?;
        // stand-ins for absent operands: b = 1 in a contraction, no bias in a convolution
        let one = upload(&[1.0])?;
        let zero = upload(&[0.0])?;
        let pipelines: Vec<GpuComputePipeline> = KERNELS
            .iter()
            .map(|code| {
                let module = device.create_shader_module(&GpuShaderModuleDescriptor::new(code));
                let stage = GpuProgrammableStage::new(&module);
                stage.set_entry_point("main");
                device.create_compute_pipeline(&GpuComputePipelineDescriptor::new_with_gpu_auto_layout_mode(
                    web_sys::GpuAutoLayoutMode::Auto,
                    &stage,
                ))
            })
            .collect();
        let mut passes = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let Dispatch { kernel, params, inputs, groups } = Dispatch::of(step);
            let params_buffer = new_buffer(params.len() * 4, gpu_buffer_usage::STORAGE | gpu_buffer_usage::COPY_DST)?;
            queue.write_buffer_with_u32_and_u8_slice(&params_buffer, 0, bytes_of(&params)).map_err(setup)?;
            let mut entries =
                vec![GpuBindGroupEntry::new_with_gpu_buffer_binding(0, &GpuBufferBinding::new(&params_buffer))];
            for (k, input) in inputs.iter().enumerate() {
                let buffer = match input {
                    Ok(id) => &buffers[*id],
                    Err(StandIn::One) => &one,
                    Err(StandIn::Zero) => &zero,
                };
                entries
                    .push(GpuBindGroupEntry::new_with_gpu_buffer_binding(k as u32 + 1, &GpuBufferBinding::new(buffer)));
            }
            let out = GpuBufferBinding::new(&buffers[step.output()]);
            entries.push(GpuBindGroupEntry::new_with_gpu_buffer_binding(inputs.len() as u32 + 1, &out));
            let layout = pipelines[kernel].get_bind_group_layout(0);
            let bind_group = device.create_bind_group(&GpuBindGroupDescriptor::new(&entries, &layout));
            passes.push(Pass { pipeline: kernel, bind_group, groups });
        }
        let readback = Readback::of(plan);
        let outputs = readback.outputs.iter().map(|(id, _, _)| buffers[*id].clone()).collect();
        let staging = new_buffer(readback.bytes as usize, gpu_buffer_usage::MAP_READ | gpu_buffer_usage::COPY_DST)?;
        Ok(GpuEngine {
            input: buffers[plan.input].clone(),
            input_len: plan.buffers[plan.input].len,
            device,
            pipelines,
            passes,
            outputs,
            readback,
            staging,
            spec: OutputSpec::of(manifest),
            lost,
            busy: Cell::new(false),
            adapter,
            fallback_adapter,
        })
    }

    /// Whether a pass is running now (a read waits for none: it takes the CPU for that pass instead).
    pub fn is_busy(&self) -> bool {
        self.busy.get()
    }

    /// Why this engine can no longer run, if the device has been lost.
    pub fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// One forward pass. Errors: `BackendUnavailable` when the device is gone, `Inference` otherwise.
    pub async fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
        if let Some(why) = self.lost() {
            return Err(unavailable(format!("the GPU device was lost: {why}")));
        }
        if input.len() != self.input_len {
            return Err(Error::Inference(format!("input has {} values, expected {}", input.len(), self.input_len)));
        }
        if self.busy.replace(true) {
            return Err(Error::Inference("the GPU engine is already running a read".into()));
        }
        let result = self.run(input).await;
        self.busy.set(false);
        if let (Err(_), Some(why)) = (&result, self.lost()) {
            return Err(unavailable(format!("the GPU device was lost: {why}")));
        }
        result
    }

    async fn run(&self, input: &[f32]) -> Result<RawOutputs> {
        let failed = |e: JsValue| Error::Inference(format!("the GPU run failed: {}", js_message(&e)));
        let queue = self.device.queue();
        self.device.push_error_scope(GpuErrorFilter::Validation);
        queue.write_buffer_with_u32_and_u8_slice(&self.input, 0, bytes_of(input)).map_err(failed)?;
        let encoder = self.device.create_command_encoder();
        let pass = encoder.begin_compute_pass();
        for p in &self.passes {
            pass.set_pipeline(&self.pipelines[p.pipeline]);
            pass.set_bind_group(0, Some(&p.bind_group));
            pass.dispatch_workgroups_with_workgroup_count_y(p.groups[0], p.groups[1]);
        }
        pass.end();
        for (k, buffer) in self.outputs.iter().enumerate() {
            let (offset, bytes) = (self.readback.outputs[k].2 as u32, self.readback.copy_bytes(k) as u32);
            encoder
                .copy_buffer_to_buffer_with_u32_and_u32_and_u32(buffer, 0, &self.staging, offset, bytes)
                .map_err(failed)?;
        }
        queue.submit(&[encoder.finish()]);
        let error = self.device.pop_error_scope().await.map_err(failed)?;
        if let Some(error) = error.into_option() {
            return Err(Error::Inference(format!("the GPU rejected the model: {}", error.message())));
        }
        self.staging.map_async(gpu_map_mode::READ).await.map_err(failed)?;
        let mapped = self.staging.get_mapped_range().map_err(failed);
        let values = mapped.map(|range| Float32Array::new(&range).to_vec());
        self.staging.unmap();
        let values = values?;
        debug_assert_eq!(values.len() as u64 * 4, self.readback.bytes);
        self.spec.raw_outputs(self.readback.split(&values))
    }
}

impl GpuEngine {
    /// Destroy the device as a driver reset would (tests of the CPU fallback only).
    pub fn destroy_device_for_test(&self) {
        self.device.destroy();
    }
}

impl Drop for GpuEngine {
    fn drop(&mut self) {
        self.device.destroy();
    }
}
