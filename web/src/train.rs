//! Training the digits classifier in the page: softmax regression by mini-batch gradient
//! descent. Every step is one submission of three recordings into one encoder — the logits
//! of the batch (web/shaders/softmax_regression.wgsl), cross-entropy with its gradient
//! ([`Gpu::encode_cross_entropy`]) and the weight update (the same shader file) — with the
//! step's loss copied aside for the page's curve. Evaluation checks the test logits and
//! loss against the CPU (f64 in wasm, and the cross-entropy CPU twin).

use std::ops::Range;
use std::rc::Rc;

use bytemuck::{Pod, Zeroable};
use wasm_bindgen::prelude::*;
use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Error, Gpu, LossBuffers, Result, Workspace, cpu};

use crate::digits::{self, CLASSES, FEATURES, Samples};
use crate::js_error;

const SHADER: &str = include_str!("../shaders/softmax_regression.wgsl");
/// `@workgroup_size` of both entry points.
const WORKGROUP: u32 = 64;
/// Weights: one row per feature and one of biases.
const WEIGHTS: usize = (FEATURES + 1) * CLASSES;
/// Images per training step (the last batch of an epoch takes the rest).
const BATCH: usize = 128;
const F32: u64 = 4;

/// `Dims` in the shader.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Dims {
    rows: u32,
    features: u32,
    classes: u32,
    learning_rate: f32,
}

/// Consecutive images bound for the two kernels and the loss: a training batch or the
/// whole test set.
struct Batch {
    rows: usize,
    bind_group: wgpu::BindGroup,
    /// Where this batch's targets lie in its split's target buffer (bytes).
    targets: Range<u64>,
    /// Its cross-entropy recording (one per recorded op, reused every time).
    workspace: Workspace,
}

impl Batch {
    fn logits_bytes(&self) -> u64 {
        (self.rows * CLASSES) as u64 * F32
    }
}

/// A softmax-regression classifier of the digits on the GPU, trained by mini-batch
/// gradient descent on the mean cross-entropy, from zero weights.
#[wasm_bindgen]
pub struct Trainer {
    gpu: Rc<Gpu>,
    forward: wgpu::ComputePipeline,
    step: wgpu::ComputePipeline,
    weights: wgpu::Buffer,
    loss: wgpu::Buffer,
    train_targets: wgpu::Buffer,
    train_logits: wgpu::Buffer,
    grad_logits: wgpu::Buffer,
    test_targets: wgpu::Buffer,
    test_logits: wgpu::Buffer,
    batches: Vec<Batch>,
    test: Batch,
    test_samples: Samples,
    train_rows: usize,
    /// Each step's loss of one `train_steps` call, read back at its end (grown as needed).
    step_losses: Option<wgpu::Buffer>,
    steps_done: u32,
}

/// What [`Trainer::evaluate`] measured on the held-out images.
#[wasm_bindgen]
#[derive(Debug, Clone, Copy)]
pub struct Evaluation {
    /// Fraction of test images whose largest GPU logit is their label.
    #[wasm_bindgen(js_name = testAccuracy)]
    pub test_accuracy: f64,
    /// The same from logits computed on the CPU (f64) with the GPU's weights.
    #[wasm_bindgen(js_name = cpuTestAccuracy)]
    pub cpu_test_accuracy: f64,
    /// Mean cross-entropy of the test set, from the GPU.
    #[wasm_bindgen(js_name = testLoss)]
    pub test_loss: f32,
    /// The cross-entropy CPU twin on the same logits.
    #[wasm_bindgen(js_name = cpuTestLoss)]
    pub cpu_test_loss: f32,
    /// How far the two losses may differ (the crate's tests' rule for a mean).
    #[wasm_bindgen(js_name = lossTolerance)]
    pub loss_tolerance: f32,
    /// The largest |GPU logit − CPU logit| as a fraction of its tolerance
    /// (`1e-5·Σ|terms| + 1e-6`): at most 1 when every logit agrees.
    #[wasm_bindgen(js_name = logitErrorRatio)]
    pub logit_error_ratio: f64,
}

impl Trainer {
    /// Uploads the data, creates the weights (zero) and builds the two pipelines.
    pub(crate) async fn create(gpu: Rc<Gpu>, csv: &str, learning_rate: f32) -> Result<Self> {
        let (train, test) = digits::parse_and_split(csv)?;
        let device = gpu.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let storage = |label: &str, floats: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: floats as u64 * F32,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let init = |label: &str, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let weights = storage("digits weights", WEIGHTS, wgpu::BufferUsages::COPY_SRC);
        let loss = storage("digits loss", 1, wgpu::BufferUsages::COPY_SRC);
        let train_logits = storage("digits batch logits", BATCH * CLASSES, wgpu::BufferUsages::empty());
        let grad_logits = storage("digits batch grad", BATCH * CLASSES, wgpu::BufferUsages::empty());
        let test_logits = storage("digits test logits", test.rows() * CLASSES, wgpu::BufferUsages::COPY_SRC);
        let (train_features, test_features) = (
            init("digits train features", bytemuck::cast_slice(&train.features)),
            init("digits test features", bytemuck::cast_slice(&test.features)),
        );
        let (train_targets, test_targets) = (
            init("digits train targets", bytemuck::cast_slice(&train.labels)),
            init("digits test targets", bytemuck::cast_slice(&test.labels)),
        );

        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("softmax_regression.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let layout = create_layout(device);
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("softmax regression"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = |entry_point: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let (forward, step) = (pipeline("logits_forward"), pipeline("gradient_descent_step"));

        // Rows `first..first + rows` of a split; a row of features is 256 bytes, so every
        // batch starts at an offset the storage-binding alignment allows.
        let batch = |features: &wgpu::Buffer, first: usize, rows: usize, logits: &wgpu::Buffer, learning_rate| {
            let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("digits dims"),
                contents: bytemuck::bytes_of(&Dims {
                    rows: rows as u32,
                    features: FEATURES as u32,
                    classes: CLASSES as u32,
                    learning_rate,
                }),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let row_bytes = (FEATURES as u64) * F32;
            let features = wgpu::BufferBinding {
                buffer: features,
                offset: first as u64 * row_bytes,
                size: wgpu::BufferSize::new(rows as u64 * row_bytes),
            };
            let resources = [
                dims.as_entire_binding(),
                wgpu::BindingResource::Buffer(features),
                weights.as_entire_binding(),
                logits.as_entire_binding(),
                grad_logits.as_entire_binding(),
            ];
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("digits batch"),
                layout: &layout,
                entries: &resources
                    .into_iter()
                    .enumerate()
                    .map(|(i, resource)| wgpu::BindGroupEntry { binding: i as u32, resource })
                    .collect::<Vec<_>>(),
            });
            Batch {
                rows,
                bind_group,
                targets: first as u64 * F32..(first + rows) as u64 * F32,
                workspace: Workspace::new(&gpu),
            }
        };
        let batches = (0..train.rows())
            .step_by(BATCH)
            .map(|first| {
                let rows = BATCH.min(train.rows() - first);
                batch(&train_features, first, rows, &train_logits, learning_rate)
            })
            .collect();
        let test_batch = batch(&test_features, 0, test.rows(), &test_logits, 0.0);
        if let Some(e) = scope.pop().await {
            return Err(Error::Device(e.to_string()));
        }
        Ok(Self {
            forward,
            step,
            weights,
            loss,
            train_targets,
            train_logits,
            grad_logits,
            test_targets,
            test_logits,
            batches,
            test: test_batch,
            test_samples: test,
            train_rows: train.rows(),
            step_losses: None,
            steps_done: 0,
            gpu,
        })
    }

    /// Runs `steps` gradient-descent steps on the next batches, one submission each, and
    /// returns each step's batch loss (before its update).
    async fn train_steps(&mut self, steps: u32) -> Result<Vec<f32>> {
        if steps == 0 {
            return Ok(Vec::new());
        }
        let step_losses = self.step_losses(u64::from(steps) * F32);
        let (device, queue) = (self.gpu.device(), self.gpu.queue());
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let batches = self.batches.len();
        let first = self.steps_done as usize;
        for i in 0..steps as usize {
            let batch = &mut self.batches[(first + i) % batches];
            let logits_bytes = batch.logits_bytes();
            let buffers = LossBuffers::new(self.train_targets.slice(batch.targets.clone()))
                .input(self.train_logits.slice(..logits_bytes))
                .loss(self.loss.slice(..))
                .grad(self.grad_logits.slice(..logits_bytes));
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("digits training step") });
            dispatch(&mut encoder, &self.forward, &batch.bind_group, batch.rows * CLASSES);
            self.gpu.encode_cross_entropy(
                &mut encoder,
                &mut batch.workspace,
                &buffers,
                batch.rows,
                CLASSES,
                &CrossEntropyOptions::default(),
            )?;
            dispatch(&mut encoder, &self.step, &batch.bind_group, WEIGHTS);
            encoder.copy_buffer_to_buffer(&self.loss, 0, &step_losses, i as u64 * F32, F32);
            queue.submit([encoder.finish()]);
        }
        if let Some(e) = scope.pop().await {
            return Err(Error::Device(e.to_string()));
        }
        let losses = self.gpu.read_buffer_async(step_losses.slice(..u64::from(steps) * F32)).await?;
        self.steps_done += steps;
        Ok(losses)
    }

    /// Computes the test logits and mean loss on the GPU and checks them against the CPU,
    /// after reading the device's out-of-range-target status of every batch.
    async fn evaluate_test(&mut self) -> Result<Evaluation> {
        let (device, queue) = (self.gpu.device(), self.gpu.queue());
        let (test, samples) = (&mut self.test, &self.test_samples);
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("digits evaluation") });
        dispatch(&mut encoder, &self.forward, &test.bind_group, test.rows * CLASSES);
        let buffers = LossBuffers::new(self.test_targets.slice(test.targets.clone()))
            .input(self.test_logits.slice(..))
            .loss(self.loss.slice(..));
        let opts = CrossEntropyOptions::default();
        self.gpu.encode_cross_entropy(&mut encoder, &mut test.workspace, &buffers, test.rows, CLASSES, &opts)?;
        queue.submit([encoder.finish()]);
        if let Some(e) = scope.pop().await {
            return Err(Error::Device(e.to_string()));
        }
        let gpu = &self.gpu;
        let gpu_logits: Vec<f32> = gpu.read_buffer_async(self.test_logits.slice(..)).await?;
        let test_loss = gpu.read_buffer_async::<f32>(self.loss.slice(..)).await?[0];
        let weights: Vec<f32> = gpu.read_buffer_async(self.weights.slice(..)).await?;
        // The device's own check of every batch's targets (their last recording).
        for batch in self.batches.iter_mut().chain([&mut *test]) {
            batch.workspace.check_targets_async(&self.gpu).await?;
        }
        let gpu_logits = &gpu_logits[..test.rows * CLASSES];

        let mut cpu_logits = Vec::with_capacity(test.rows * CLASSES);
        let mut logit_error_ratio = 0.0f64;
        for (r, pixels) in samples.features.chunks(FEATURES).enumerate() {
            for c in 0..CLASSES {
                let bias = f64::from(weights[FEATURES * CLASSES + c]);
                let products =
                    pixels.iter().enumerate().map(|(k, &x)| f64::from(x) * f64::from(weights[k * CLASSES + c]));
                let (z, magnitude) =
                    std::iter::once(bias).chain(products).fold((0.0, 0.0), |(z, m), t| (z + t, m + t.abs()));
                let error = (f64::from(gpu_logits[r * CLASSES + c]) - z).abs();
                logit_error_ratio = logit_error_ratio.max(error / (1e-5 * magnitude + 1e-6));
                cpu_logits.push(z as f32);
            }
        }
        let cpu_test_loss = cpu::cross_entropy(gpu_logits, &samples.labels, test.rows, CLASSES, &opts)?[0];
        let scale = gpu_logits.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        Ok(Evaluation {
            test_accuracy: accuracy(gpu_logits, &samples.labels),
            cpu_test_accuracy: accuracy(&cpu_logits, &samples.labels),
            test_loss,
            cpu_test_loss,
            loss_tolerance: 2e-5 * scale * (test.rows as f32).sqrt() + 1e-4 * cpu_test_loss.abs(),
            logit_error_ratio,
        })
    }

    /// The buffer the steps' losses are copied to, at least `bytes` long, kept between calls.
    fn step_losses(&mut self, bytes: u64) -> wgpu::Buffer {
        match &self.step_losses {
            Some(buffer) if buffer.size() >= bytes => buffer.clone(),
            _ => {
                let buffer = self.gpu.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("digits step losses"),
                    size: bytes.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
                    usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                self.step_losses = Some(buffer.clone());
                buffer
            }
        }
    }
}

/// Records one dispatch of `pipeline` over `invocations` with a batch's bind group.
fn dispatch(
    encoder: &mut wgpu::CommandEncoder, pipeline: &wgpu::ComputePipeline, bind_group: &wgpu::BindGroup,
    invocations: usize,
) {
    let mut pass = encoder
        .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("softmax regression"), timestamp_writes: None });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups((invocations as u32).div_ceil(WORKGROUP), 1, 1);
}

/// The fraction of rows whose largest logit is at their label.
fn accuracy(logits: &[f32], labels: &[i32]) -> f64 {
    let correct = logits
        .chunks(CLASSES)
        .zip(labels)
        .filter(|(row, label)| {
            let best = (0..CLASSES).fold(0, |best, c| if row[c] > row[best] { c } else { best });
            best == **label as usize
        })
        .count();
    correct as f64 / labels.len() as f64
}

fn create_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let buffer = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    };
    let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("softmax regression"),
        entries: &[
            buffer(0, wgpu::BufferBindingType::Uniform),
            buffer(1, storage(true)),
            buffer(2, storage(false)),
            buffer(3, storage(false)),
            buffer(4, storage(true)),
        ],
    })
}

#[wasm_bindgen]
impl Trainer {
    /// Runs `steps` steps and resolves to their batch losses (a `Float32Array`). Await
    /// each call before the next: wasm-bindgen throws on overlapping calls of one trainer.
    pub async fn train(&mut self, steps: u32) -> std::result::Result<Vec<f32>, js_sys::Error> {
        self.train_steps(steps).await.map_err(js_error)
    }

    /// Evaluates on the held-out images and checks against the CPU (see [`Evaluation`]).
    pub async fn evaluate(&mut self) -> std::result::Result<Evaluation, js_sys::Error> {
        self.evaluate_test().await.map_err(js_error)
    }

    /// Images trained on.
    #[wasm_bindgen(getter = trainRows)]
    pub fn train_rows(&self) -> usize {
        self.train_rows
    }

    /// Images held out.
    #[wasm_bindgen(getter = testRows)]
    pub fn test_rows(&self) -> usize {
        self.test.rows
    }

    /// Images per training step.
    #[wasm_bindgen(getter = batchSize)]
    pub fn batch_size(&self) -> usize {
        BATCH
    }

    /// Steps run so far.
    #[wasm_bindgen(getter = stepsDone)]
    pub fn steps_done(&self) -> u32 {
        self.steps_done
    }
}
