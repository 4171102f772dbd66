//! The GPU engine outside the browser: the page's kernels and step words (`kernels`) run through wgpu on
//! Vulkan, behind the synchronous `Engine` trait. What it is for: a kiosk with a GPU (`xray-reader --engine
//! gpu`), the GPU parity tests without a browser (tests/native_gpu.rs; Mesa's software Vulkan in CI), and
//! timing the page's shaders on a real GPU where no Chromium runs (`xray-reader-gpu-bench`, BENCHMARKS.md).
//!
//! Like the browser engine: weights are dequantized once at load (the int8 fold) and uploaded as f32, every
//! step's parameters and bindings are built at load, and a read is one upload, one command buffer and one
//! readback. Built only with the `native-gpu` feature (wgpu is not in the default build).

use std::sync::{Arc, Mutex};

use web_time::Instant;

use super::kernels::{Dispatch, KERNELS, MAX_BINDINGS, Readback, StandIn, bytes_of};
use super::plan::Plan;
use super::{Engine, LoadTimings, OutputSpec, RawOutputs};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Which adapters the engine may take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    /// A hardware GPU only: a software rasteriser (llvmpipe) is far slower than the CPU engine.
    #[default]
    Hardware,
    /// Any adapter, software ones too (parity tests).
    Any,
}

/// The adapter an engine runs on, as the driver names it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// A CPU emulation (Mesa's llvmpipe/lavapipe, SwiftShader), not a GPU.
    pub software: bool,
}

struct Pass {
    pipeline: usize,
    bind_group: wgpu::BindGroup,
    groups: [u32; 2],
}

pub struct NativeGpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: Vec<wgpu::ComputePipeline>,
    passes: Vec<Pass>,
    input: wgpu::Buffer,
    input_len: usize,
    /// The output buffers, in `readback`'s order, and where their values go in `staging`.
    outputs: Vec<wgpu::Buffer>,
    readback: Readback,
    staging: wgpu::Buffer,
    spec: OutputSpec,
    /// Why the device went away, once it has.
    lost: Arc<Mutex<Option<String>>>,
    /// One read at a time: reads share the input and staging buffers.
    running: Mutex<()>,
    pub adapter: AdapterInfo,
}

fn unavailable(why: impl Into<String>) -> Error {
    Error::BackendUnavailable(why.into())
}

impl NativeGpuEngine {
    /// Find an adapter, lower the model and set everything up; fills `optimise` of `timings` with the
    /// decluttering, lowering, upload and pipeline time (the parse and fold are in `Plan::load` too). Any
    /// failure is `BackendUnavailable` with the reason (no Vulkan, no adapter, limits too small, an op
    /// without a kernel, a shader the driver rejects).
    pub fn new(
        onnx: &[u8],
        manifest: &Manifest,
        choice: AdapterChoice,
        timings: &mut LoadTimings,
    ) -> Result<NativeGpuEngine> {
        let t = Instant::now();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::VULKAN,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| unavailable(format!("no GPU adapter (Vulkan): {e}")))?;
        let info = adapter.get_info();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        let adapter_info = AdapterInfo {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver.as_str(), info.driver_info.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            software,
        };
        if software && choice == AdapterChoice::Hardware {
            return Err(unavailable(format!(
                "the only GPU adapter is a software one ({}), slower than the CPU engine",
                info.name
            )));
        }
        let plan = Plan::load(onnx, manifest)?;
        let largest = plan.buffers.iter().map(|b| b.len * 4).max().unwrap_or(0) as u64;
        let limits = wgpu::Limits::default();
        let offered = adapter.limits();
        if largest > offered.max_storage_buffer_binding_size
            || offered.max_storage_buffers_per_shader_stage < MAX_BINDINGS
        {
            return Err(unavailable(format!(
                "the GPU's limits are too small: storage bindings of {} bytes (the model needs {largest}), {} \
                 storage buffers per stage (needs {MAX_BINDINGS})",
                offered.max_storage_buffer_binding_size, offered.max_storage_buffers_per_shader_stage
            )));
        }
        let required_limits = wgpu::Limits {
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size.max(largest),
            max_buffer_size: limits.max_buffer_size.max(largest),
            ..limits
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("xray-reader"),
            required_limits,
            ..Default::default()
        }))
        .map_err(|e| unavailable(format!("the GPU refused a device: {e}")))?;
        let lost = Arc::new(Mutex::new(None));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                if let Ok(mut why) = lost.lock() {
                    *why = Some(format!("{reason:?}: {message}"));
                }
            });
        }
        // Errors outside a scope would otherwise panic (wgpu's default handler); every call below is scoped.
        device.on_uncaptured_error(Arc::new(|e| eprintln!("xray-reader: uncaptured GPU error: {e}")));
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let engine = NativeGpuEngine::build(device, queue, &plan, manifest, lost, adapter_info);
        let setup_failed =
            |e: wgpu::Error| unavailable(format!("setting up the GPU failed: {}", first_line(&e.to_string())));
        if let Some(e) = pollster::block_on(memory.pop()) {
            return Err(setup_failed(e));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(setup_failed(e));
        }
        timings.optimise = t.elapsed().as_secs_f64() * 1e3;
        Ok(engine)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        plan: &Plan,
        manifest: &Manifest,
        lost: Arc<Mutex<Option<String>>>,
        adapter: AdapterInfo,
    ) -> NativeGpuEngine {
        use wgpu::BufferUsages as U;
        let new_buffer = |bytes: usize, usage: U| {
            let size = bytes.max(4).next_multiple_of(4) as u64;
            device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage, mapped_at_creation: false })
        };
        let storage = U::STORAGE | U::COPY_DST | U::COPY_SRC;
        let upload = |values: &[u8]| {
            let buffer = new_buffer(values.len(), storage);
            queue.write_buffer(&buffer, 0, values);
            buffer
        };
        let buffers: Vec<wgpu::Buffer> = plan
            .buffers
            .iter()
            .map(|b| match &b.data {
                Some(data) => upload(bytes_of(data)),
                None => new_buffer(b.len * 4, storage),
            })
            .collect();
        let one = upload(bytes_of(&[1.0f32]));
        let zero = upload(bytes_of(&[0.0f32]));
        let pipelines: Vec<wgpu::ComputePipeline> = KERNELS
            .iter()
            .map(|code| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: None,
                    source: wgpu::ShaderSource::Wgsl((*code).into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: None,
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        let passes = plan
            .steps
            .iter()
            .map(|step| {
                let Dispatch { kernel, params, inputs, groups } = Dispatch::of(step);
                let params = upload(bytes_of(&params));
                let bound: Vec<&wgpu::Buffer> = std::iter::once(&params)
                    .chain(inputs.iter().map(|input| match input {
                        Ok(id) => &buffers[*id],
                        Err(StandIn::One) => &one,
                        Err(StandIn::Zero) => &zero,
                    }))
                    .chain(std::iter::once(&buffers[step.output()]))
                    .collect();
                let entries: Vec<wgpu::BindGroupEntry> = bound
                    .iter()
                    .enumerate()
                    .map(|(k, b)| wgpu::BindGroupEntry { binding: k as u32, resource: b.as_entire_binding() })
                    .collect();
                let layout = pipelines[kernel].get_bind_group_layout(0);
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &layout,
                    entries: &entries,
                });
                Pass { pipeline: kernel, bind_group, groups }
            })
            .collect();
        let readback = Readback::of(plan);
        let outputs = readback.outputs.iter().map(|(id, _, _)| buffers[*id].clone()).collect();
        let staging = new_buffer(readback.bytes as usize, U::MAP_READ | U::COPY_DST);
        NativeGpuEngine {
            input: buffers[plan.input].clone(),
            input_len: plan.buffers[plan.input].len,
            device,
            queue,
            pipelines,
            passes,
            outputs,
            readback,
            staging,
            spec: OutputSpec::of(manifest),
            lost,
            running: Mutex::new(()),
            adapter,
        }
    }

    /// Why this engine can no longer run, if the device has been lost.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|why| why.clone())
    }

    fn run(&self, input: &[f32]) -> Result<RawOutputs> {
        let failed = |why: String| Error::Inference(format!("the GPU run failed: {why}"));
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.queue.write_buffer(&self.input, 0, bytes_of(input));
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            for p in &self.passes {
                pass.set_pipeline(&self.pipelines[p.pipeline]);
                pass.set_bind_group(0, &p.bind_group, &[]);
                pass.dispatch_workgroups(p.groups[0], p.groups[1], 1);
            }
        }
        for (k, buffer) in self.outputs.iter().enumerate() {
            let offset = self.readback.outputs[k].2;
            encoder.copy_buffer_to_buffer(buffer, 0, &self.staging, offset, self.readback.copy_bytes(k));
        }
        self.queue.submit([encoder.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Inference(format!("the GPU rejected the model: {}", first_line(&e.to_string()))));
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = sender.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| failed(e.to_string()))?;
        receiver.recv().map_err(|e| failed(e.to_string()))?.map_err(|e| failed(e.to_string()))?;
        let values: Vec<f32> = {
            let view = self.staging.get_mapped_range(..).map_err(|e| failed(e.to_string()))?;
            view.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        };
        self.staging.unmap();
        self.spec.raw_outputs(self.readback.split(&values))
    }
}

impl NativeGpuEngine {
    /// Destroy the device as a driver reset would (tests of the CPU fallback only).
    pub fn destroy_device_for_test(&self) {
        self.device.destroy();
    }
}

fn first_line(s: &str) -> String {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim().to_owned()
}

impl Engine for NativeGpuEngine {
    fn name(&self) -> &'static str {
        "gpu"
    }

    /// One forward pass. Errors: `BackendUnavailable` when the device is gone, `Inference` otherwise.
    fn infer(&self, input: &[f32]) -> Result<RawOutputs> {
        if let Some(why) = self.lost() {
            return Err(unavailable(format!("the GPU device was lost: {why}")));
        }
        if input.len() != self.input_len {
            return Err(Error::Inference(format!("input has {} values, expected {}", input.len(), self.input_len)));
        }
        let _one_at_a_time =
            self.running.lock().map_err(|_| Error::Inference("an earlier GPU read panicked".into()))?;
        let result = self.run(input);
        match (&result, self.lost()) {
            (Err(_), Some(why)) => Err(unavailable(format!("the GPU device was lost: {why}"))),
            _ => result,
        }
    }
}
