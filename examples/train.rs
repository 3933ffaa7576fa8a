//! Trains a softmax-regression classifier entirely on the GPU.
//!
//! A training step records, into the program's own command encoder: the linear layer
//! `logits = x·Wᵀ + b`, this crate's loss forward and gradient in one fused kernel (the
//! encode API, on the program's buffers), the weight gradient `gᵀ·x` and the SGD update.
//! The model's kernels are in `examples/train/linear_model.wgsl`. Every mini-batch
//! keeps its own bind group and loss [`Workspace`], so a whole epoch, every step and then the
//! test set, is recorded into one encoder and submitted once. Nothing is read back inside a
//! step: each step writes its loss into its own slot of a device buffer, and the losses and
//! the counts of correct predictions are read back once per epoch.
//!
//! `--hidden N` adds a layer of N ReLU units, and `--head fused` takes the output layer and
//! its loss through `encode_linear_cross_entropy`, which never holds the logits (class-index
//! data sets only; see `examples/train/mlp.rs`, where every product is wgpu-loss's).
//!
//! Data sets (`--dataset`):
//! * `digits` (default): the UCI handwritten digits, 1797 8×8 images of 10 classes
//!   (`data/digits.csv.gz`, CC BY 4.0, see `data/LICENSE-digits.md`), 80 % train, 20 % test.
//! * `bmi`: height and weight → underweight / normal / overweight, generated with a fixed seed.
//! * `diet`: the same people, "needs a diet" (BMI ≥ 25) or not: one logit, trained with
//!   binary cross-entropy with logits.
//!
//! ```text
//! cargo run --release --example train
//! cargo run --release --example train -- --dataset bmi --plot bmi.svg
//! cargo run --release --example train -- --hidden 64 --head fused  # logits never stored
//! WGPU_BACKEND=gl cargo run --release --example train     # llvmpipe through OpenGL
//! ```

use std::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use wgpu::util::DeviceExt;
use wgpu_loss::{BceOptions, CrossEntropyOptions, ElementwiseBuffers, Gpu, LossBuffers, Workspace, cpu};

#[path = "train/mlp.rs"]
mod mlp;
use mlp::Head;

const USAGE: &str = "usage: train [--dataset digits|bmi|diet] [--epochs N] [--lr RATE] [--batch ROWS] \
                     [--hidden UNITS] [--head plain|fused] [--plot LOSS.svg] [--quiet]";
/// The seed of everything random: the split, the BMI people, the initial weights and the
/// order of the training rows in each epoch.
const SEED: u64 = 2024;
/// Invocations per workgroup of every kernel in linear_model.wgsl.
const WORKGROUP: u32 = 64;
/// The checked step's GPU values must be within `TOLERANCE · max(1, max |cpu|)` of the CPU's.
const TOLERANCE: f32 = 1e-4;
const F32: u64 = 4;

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse()?;
    let data = match args.dataset.as_str() {
        "digits" => digits()?,
        "bmi" => bmi(Task::Classes(3)),
        "diet" => bmi(Task::Binary),
        other => return Err(format!("unknown dataset {other:?} (try --help)").into()),
    };
    let epochs = args.epochs.unwrap_or(data.epochs);
    let learning_rate = args.learning_rate.unwrap_or(data.learning_rate);

    let gpu = Gpu::new()?;
    println!("adapter: {} ({:?})", gpu.adapter_info().name, gpu.adapter_info().backend);
    println!(
        "{}: {} training rows, {} test rows, {} features, {}; batches of {}, learning rate {learning_rate}",
        data.name,
        data.train.rows(),
        data.test.rows(),
        data.features,
        data.task,
        args.batch,
    );

    let mut rng = Rng::new(SEED);
    let mut model = if args.hidden == 0 && args.head == Head::Plain {
        // Small random weights and biases, uniform in [-0.05, 0.05).
        let weights: Vec<f32> =
            (0..data.task.outputs() * (data.features + 1)).map(|_| 0.1 * (rng.uniform() as f32 - 0.5)).collect();
        Model::Linear(Box::new(Trainer::new(gpu, &data, args.batch, learning_rate, &weights)), weights)
    } else {
        println!("model: {} hidden ReLU units, {:?} output layer", args.hidden, args.head);
        Model::Mlp(Box::new(mlp::Mlp::new(gpu, &data, (args.hidden, args.head), args.batch, learning_rate, &mut rng)?))
    };
    model.check_step(&data)?;

    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(epochs as u64) };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>3} [{bar:30}] epoch {pos}/{len} {msg}")?.progress_chars("=> "),
    );
    let test_percent = |correct: usize| 100.0 * correct as f32 / data.test.rows() as f32;
    let mut history = Vec::with_capacity(epochs);
    let start = Instant::now();
    for epoch in 1..=epochs {
        let mut order: Vec<usize> = (0..data.train.rows()).collect();
        rng.shuffle(&mut order);
        model.upload_train_rows(&data, &order);
        let stats = model.train_epoch()?;
        if !args.quiet {
            bar.suspend(|| {
                println!(
                    "epoch {epoch:>3}/{epochs}: loss {:.4}, train accuracy {:5.1} %, test loss {:.4}, test accuracy {:5.1} %",
                    stats.loss,
                    100.0 * stats.train_accuracy,
                    stats.test_loss,
                    test_percent(stats.test_correct),
                );
            });
        }
        bar.set_message(format!("test accuracy {:.1} %", test_percent(stats.test_correct)));
        bar.inc(1);
        history.push(stats);
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    model.check_targets()?;

    let last = history.last().expect("--epochs is at least 1");
    println!(
        "final test accuracy: {:.1} % ({} of {}), test loss {:.4}, after {epochs} epochs ({} steps) in {:.2} s",
        test_percent(last.test_correct),
        last.test_correct,
        data.test.rows(),
        last.test_loss,
        epochs * model.steps(),
        elapsed.as_secs_f32()
    );
    if let Some(path) = &args.plot {
        plot_losses(path, &data, &history)?;
        println!("loss curve written to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Training on the device

/// A mini-batch of the training rows, or the test set: its bind group and the workspace of
/// its loss op, built once and reused every epoch, so recording a step creates nothing.
struct Batch {
    first_row: usize,
    rows: usize,
    bind_group: wgpu::BindGroup,
    workspace: Workspace,
}

/// A split's rows on the device.
struct DeviceSplit {
    /// `rows × features` f32, row-major.
    x: wgpu::Buffer,
    /// One per row: an `i32` class index, or an `f32` 0 or 1 for a binary task.
    targets: wgpu::Buffer,
}

/// What one epoch measured.
struct EpochStats {
    /// The loss of each step, in order.
    step_losses: Vec<f32>,
    /// The mean loss over the epoch's rows, each measured before its step's update.
    loss: f32,
    /// The share of rows predicted right, each before its step's update.
    train_accuracy: f32,
    test_loss: f32,
    test_correct: usize,
}

/// Everything on the device, created once: the model, the data, a step's scratch, and where
/// an epoch's results are collected.
struct Trainer {
    gpu: Gpu,
    kernels: Kernels,
    task: Task,
    features: usize,
    /// d loss / d weights, laid out as the weights (which live in the bind groups only).
    weight_grad: wgpu::Buffer,
    /// A batch's logits and the loss's gradient with respect to them (`rows × outputs`).
    logits: wgpu::Buffer,
    logit_grad: wgpu::Buffer,
    train: DeviceSplit,
    test: DeviceSplit,
    /// The loss of each step of an epoch (slot `k` for batch `k`), then the test loss.
    losses: wgpu::Buffer,
    train_correct: wgpu::Buffer,
    test_correct: wgpu::Buffer,
    batches: Vec<Batch>,
    test_batch: Batch,
}

impl Trainer {
    /// Uploads the data (the training rows in their split order) and the initial `weights`
    /// (`W`, `outputs × features` row-major, then `b`), and builds every batch.
    fn new(gpu: Gpu, data: &Dataset, batch_rows: usize, learning_rate: f32, weights: &[f32]) -> Self {
        let device = gpu.device();
        let kernels = Kernels::new(device);
        let (task, features, outputs) = (data.task, data.features, data.task.outputs());
        let init = |label, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            })
        };
        let zeros = |label, values: usize| init(label, &vec![0; values * F32 as usize]);
        let upload = |split: &Split| DeviceSplit {
            x: init("x", bytemuck::cast_slice(&split.x)),
            targets: init("targets", bytemuck::cast_slice(&task.targets(&split.labels))),
        };
        let (train, test) = (upload(&data.train), upload(&data.test));
        let most_rows = batch_rows.min(data.train.rows()).max(data.test.rows());
        let logits = zeros("logits", most_rows * outputs);
        let logit_grad = zeros("logit grad", most_rows * outputs);
        let weight_grad = zeros("weight grad", weights.len());
        let weights = init("weights", bytemuck::cast_slice(weights));
        let train_correct = zeros("train correct", 1);
        let test_correct = zeros("test correct", 1);

        let batch = |split: &DeviceSplit, correct: &wgpu::Buffer, first_row: usize, rows: usize| {
            let params = BatchParams {
                first_row: first_row as u32,
                rows: rows as u32,
                features: features as u32,
                outputs: outputs as u32,
                learning_rate,
                binary: u32::from(task == Task::Binary),
                _pad: [0; 2],
            };
            let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("batch params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            // In the order of the bindings in linear_model.wgsl.
            let bound = [&params, &split.x, &split.targets, &weights, &logits, &logit_grad, &weight_grad, correct];
            let entries: Vec<_> = (0..)
                .zip(bound)
                .map(|(binding, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() })
                .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("batch"),
                layout: &kernels.layout,
                entries: &entries,
            });
            Batch { first_row, rows, bind_group, workspace: Workspace::new(&gpu) }
        };
        let batches: Vec<Batch> = (0..data.train.rows())
            .step_by(batch_rows)
            .map(|first| batch(&train, &train_correct, first, batch_rows.min(data.train.rows() - first)))
            .collect();
        let test_batch = batch(&test, &test_correct, 0, data.test.rows());
        let losses = zeros("losses", batches.len() + 1);
        Self {
            gpu,
            kernels,
            task,
            features,
            weight_grad,
            logits,
            logit_grad,
            train,
            test,
            losses,
            train_correct,
            test_correct,
            batches,
            test_batch,
        }
    }

    fn weight_count(&self) -> usize {
        (self.features + 1) * self.task.outputs()
    }

    /// Records batch `k`'s forward pass and the count of its right predictions, then this
    /// crate's loss into `losses[k]` and, with `backward`, the gradients with respect to the
    /// logits and the weights. `k == batches.len()` is the test set.
    fn record_batch(&mut self, encoder: &mut wgpu::CommandEncoder, k: usize, backward: bool) -> wgpu_loss::Result<()> {
        let weight_count = self.weight_count();
        let (batch, split) = match self.batches.get_mut(k) {
            Some(batch) => (batch, &self.train),
            None => (&mut self.test_batch, &self.test),
        };
        let logit_count = batch.rows * self.task.outputs();
        let forward = [(&self.kernels.linear_forward, logit_count), (&self.kernels.count_correct, batch.rows)];
        dispatch(encoder, &batch.bind_group, &forward);

        // The loss reads the batch's targets and writes its loss at any 4-byte offset: the
        // crate binds from the aligned offset below and hands the rest to its kernels.
        let logits = values(&self.logits, 0, logit_count);
        let targets = values(&split.targets, batch.first_row, batch.rows);
        let loss = values(&self.losses, k, 1);
        let logit_grad = values(&self.logit_grad, 0, logit_count);
        let (gpu, workspace, rows) = (&self.gpu, &mut batch.workspace, batch.rows);
        match self.task {
            Task::Classes(classes) => {
                let buffers = LossBuffers::new(targets).input(logits).loss(loss);
                let buffers = if backward { buffers.grad(logit_grad) } else { buffers };
                let opts = CrossEntropyOptions::default(); // mean over the batch
                gpu.encode_cross_entropy(encoder, workspace, &buffers, rows, classes, &opts)?;
            }
            Task::Binary => {
                let buffers = ElementwiseBuffers::new(logits, targets).loss(loss);
                let buffers = if backward { buffers.grad(logit_grad) } else { buffers };
                let opts = BceOptions::default(); // mean over the batch
                gpu.encode_binary_cross_entropy_with_logits(encoder, workspace, &buffers, rows, &opts)?;
            }
        }

        if backward {
            dispatch(encoder, &batch.bind_group, &[(&self.kernels.linear_weight_grad, weight_count)]);
        }
        Ok(())
    }

    /// Records one SGD step per mini-batch, then the test set's loss and accuracy, all into
    /// one encoder (each batch has its own loss workspace, so they can share a submission),
    /// submits it and reads back what the epoch measured.
    fn train_epoch(&mut self) -> Result<EpochStats, Box<dyn Error>> {
        let steps = self.batches.len();
        let mut encoder = self.gpu.device().create_command_encoder(&Default::default());
        encoder.clear_buffer(&self.train_correct, 0, None);
        encoder.clear_buffer(&self.test_correct, 0, None);
        for k in 0..steps {
            self.record_batch(&mut encoder, k, true)?;
            let update = [(&self.kernels.sgd_step, self.weight_count())];
            dispatch(&mut encoder, &self.batches[k].bind_group, &update);
        }
        self.record_batch(&mut encoder, steps, false)?;

        let sources = [(&self.losses, steps + 1), (&self.train_correct, 1), (&self.test_correct, 1)];
        let [losses, train_correct, test_correct] = read_back(&self.gpu, encoder, sources)?;
        let losses: Vec<f32> = losses.into_iter().map(f32::from_bits).collect();
        let train_rows: usize = self.batches.iter().map(|b| b.rows).sum();
        let row_losses: f32 = self.batches.iter().zip(&losses).map(|(b, l)| l * b.rows as f32).sum();
        Ok(EpochStats {
            step_losses: losses[..steps].to_vec(),
            loss: row_losses / train_rows as f32,
            train_accuracy: train_correct[0] as f32 / train_rows as f32,
            test_loss: losses[steps],
            test_correct: test_correct[0] as usize,
        })
    }

    /// Writes the training rows in `order` over the device's copy, ahead of the next
    /// submission: the only upload after setup.
    fn upload_train_rows(&self, data: &Dataset, order: &[usize]) {
        upload_rows(&self.gpu, &self.train, data, order);
    }

    /// Records the first mini-batch's forward pass, loss and gradients (no update), reads
    /// them back and compares each with the CPU: the linear layer and its weight gradient in
    /// f64 here, the loss and its gradient with this crate's f64 CPU twin. `weights` are the
    /// ones on the device.
    fn check_step(&mut self, data: &Dataset, weights: &[f32]) -> Result<(), Box<dyn Error>> {
        let (rows, features, outputs) = (self.batches[0].rows, self.features, self.task.outputs());
        let mut encoder = self.gpu.device().create_command_encoder(&Default::default());
        self.record_batch(&mut encoder, 0, true)?;
        let sources = [
            (&self.logits, rows * outputs),
            (&self.losses, 1),
            (&self.logit_grad, rows * outputs),
            (&self.weight_grad, self.weight_count()),
        ];
        let [gpu_logits, gpu_loss, gpu_logit_grad, gpu_weight_grad] = read_back(&self.gpu, encoder, sources)?
            .map(|words| words.into_iter().map(f32::from_bits).collect::<Vec<f32>>());

        let x = &data.train.x[..rows * features];
        let labels = &data.train.labels[..rows];
        let logits = linear_forward_cpu(x, weights, features, outputs);
        let (loss, logit_grad) = match self.task {
            Task::Classes(classes) => {
                let targets: Vec<i32> = labels.iter().map(|&l| l as i32).collect();
                let opts = CrossEntropyOptions::default();
                cpu::cross_entropy_with_grad(&logits, &targets, rows, classes, &opts, &[1.0])?
            }
            Task::Binary => {
                let targets: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
                let opts = BceOptions::default();
                cpu::binary_cross_entropy_with_logits_with_grad(&logits, &targets, rows, &opts, &[1.0])?
            }
        };
        let weight_grad = linear_weight_grad_cpu(x, &logit_grad, features, outputs);
        println!("one step on {rows} rows against the CPU (f64) reference, max |gpu - cpu|:");
        compare("logits", &gpu_logits, &logits)?;
        compare("loss", &gpu_loss, &loss)?;
        compare("d loss / d logits", &gpu_logit_grad, &logit_grad)?;
        compare("d loss / d weights", &gpu_weight_grad, &weight_grad)?;
        Ok(())
    }

    /// Asks each batch's loss workspace whether the device met a class index out of range
    /// (which would otherwise show only as a NaN loss): one small readback per batch.
    fn check_targets(&mut self) -> wgpu_loss::Result<()> {
        if let Task::Classes(_) = self.task {
            for batch in &mut self.batches {
                batch.workspace.check_targets(&self.gpu)?;
            }
        }
        Ok(())
    }
}

/// Writes the training rows of `data` in `order` over the device's copy `split`, ahead of
/// the next submission: the only upload after setup.
fn upload_rows(gpu: &Gpu, split: &DeviceSplit, data: &Dataset, order: &[usize]) {
    let f = data.features;
    let x: Vec<f32> = order.iter().flat_map(|&r| &data.train.x[r * f..][..f]).copied().collect();
    let labels: Vec<u32> = order.iter().map(|&r| data.train.labels[r]).collect();
    gpu.queue().write_buffer(&split.x, 0, bytemuck::cast_slice(&x));
    gpu.queue().write_buffer(&split.targets, 0, bytemuck::cast_slice(&data.task.targets(&labels)));
}

/// The model being trained: the linear one with this example's kernels, or the two-layer
/// one through wgpu-loss's products (`--hidden`, `--head fused`).
enum Model {
    Linear(Box<Trainer>, Vec<f32>),
    Mlp(Box<mlp::Mlp>),
}

impl Model {
    fn check_step(&mut self, data: &Dataset) -> Result<(), Box<dyn Error>> {
        match self {
            Model::Linear(t, weights) => t.check_step(data, weights),
            Model::Mlp(m) => m.check_step(data),
        }
    }

    fn upload_train_rows(&self, data: &Dataset, order: &[usize]) {
        match self {
            Model::Linear(t, _) => t.upload_train_rows(data, order),
            Model::Mlp(m) => m.upload_train_rows(data, order),
        }
    }

    fn train_epoch(&mut self) -> Result<EpochStats, Box<dyn Error>> {
        match self {
            Model::Linear(t, _) => t.train_epoch(),
            Model::Mlp(m) => m.train_epoch(),
        }
    }

    fn check_targets(&mut self) -> wgpu_loss::Result<()> {
        match self {
            Model::Linear(t, _) => t.check_targets(),
            Model::Mlp(m) => m.check_targets(),
        }
    }

    fn steps(&self) -> usize {
        match self {
            Model::Linear(t, _) => t.batches.len(),
            Model::Mlp(m) => m.steps(),
        }
    }
}

/// `BatchParams` in linear_model.wgsl, field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct BatchParams {
    first_row: u32,
    rows: u32,
    features: u32,
    outputs: u32,
    learning_rate: f32,
    binary: u32,
    _pad: [u32; 2],
}

/// The pipelines of linear_model.wgsl, sharing one bind-group layout.
struct Kernels {
    layout: wgpu::BindGroupLayout,
    linear_forward: wgpu::ComputePipeline,
    linear_weight_grad: wgpu::ComputePipeline,
    sgd_step: wgpu::ComputePipeline,
    count_correct: wgpu::ComputePipeline,
}

impl Kernels {
    fn new(device: &wgpu::Device) -> Self {
        let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
        let (layout, [linear_forward, linear_weight_grad, sgd_step, count_correct]) = pipelines(
            device,
            "softmax regression",
            wgpu::include_wgsl!("train/linear_model.wgsl"),
            &[
                wgpu::BufferBindingType::Uniform, // p: BatchParams
                storage(true),                    // x
                storage(true),                    // targets
                storage(false),                   // weights
                storage(false),                   // logits
                storage(true),                    // logit_grad
                storage(false),                   // weight_grad
                storage(false),                   // correct
            ],
            ["linear_forward", "linear_weight_grad", "sgd_step", "count_correct"],
        );
        Self { layout, linear_forward, linear_weight_grad, sgd_step, count_correct }
    }
}

/// A bind-group layout whose binding `i` is a buffer of type `bindings[i]`, and the
/// pipelines of `entry_points` in `module` on it.
fn pipelines<const N: usize>(
    device: &wgpu::Device, label: &str, module: wgpu::ShaderModuleDescriptor<'_>, bindings: &[wgpu::BufferBindingType],
    entry_points: [&str; N],
) -> (wgpu::BindGroupLayout, [wgpu::ComputePipeline; N]) {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = (0u32..)
        .zip(bindings)
        .map(|(binding, &ty)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        })
        .collect();
    let layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let module = device.create_shader_module(module);
    let pipelines = entry_points.map(|entry_point| {
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry_point),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry_point),
            compilation_options: Default::default(),
            cache: None,
        })
    });
    (layout, pipelines)
}

/// Records `kernels` in order into one compute pass with `bind_group`, each over `count`
/// invocations. wgpu orders the dispatches' buffer accesses.
fn dispatch(
    encoder: &mut wgpu::CommandEncoder, bind_group: &wgpu::BindGroup, kernels: &[(&wgpu::ComputePipeline, usize)],
) {
    let mut pass = encoder.begin_compute_pass(&Default::default());
    pass.set_bind_group(0, bind_group, &[]);
    for &(pipeline, count) in kernels {
        pass.set_pipeline(pipeline);
        pass.dispatch_workgroups((count as u32).div_ceil(WORKGROUP), 1, 1);
    }
}

/// `count` 4-byte values of `buffer` from value `first` on.
fn values(buffer: &wgpu::Buffer, first: usize, count: usize) -> wgpu::BufferSlice<'_> {
    buffer.slice(first as u64 * F32..(first + count) as u64 * F32)
}

/// Submits `encoder`, then reads back the first `count` values of each source as 32-bit
/// words, in order.
fn read_back<const N: usize>(
    gpu: &Gpu, encoder: wgpu::CommandEncoder, sources: [(&wgpu::Buffer, usize); N],
) -> Result<[Vec<u32>; N], Box<dyn Error>> {
    gpu.queue().submit([encoder.finish()]);
    let mut words = Vec::with_capacity(N);
    for (source, count) in sources {
        words.push(gpu.read_buffer::<u32>(source.slice(..count as u64 * F32))?);
    }
    Ok(words.try_into().expect("one read per source"))
}

// ---------------------------------------------------------------------------------------
// The CPU reference of one step

/// `linear_forward` on the CPU, in f64: `x·Wᵀ + b` for every row of `x`.
fn linear_forward_cpu(x: &[f32], weights: &[f32], features: usize, outputs: usize) -> Vec<f32> {
    let (w, b) = weights.split_at(outputs * features);
    let logit = |row: &[f32], o: usize| {
        let dot: f64 = row.iter().zip(&w[o * features..]).map(|(&x, &w)| f64::from(x) * f64::from(w)).sum();
        (f64::from(b[o]) + dot) as f32
    };
    x.chunks(features).flat_map(|row| (0..outputs).map(move |o| logit(row, o))).collect()
}

/// `linear_weight_grad` on the CPU, in f64: `gᵀ·x`, then the column sums of `g`.
fn linear_weight_grad_cpu(x: &[f32], g: &[f32], features: usize, outputs: usize) -> Vec<f32> {
    let rows = || x.chunks(features).zip(g.chunks(outputs));
    let weight = |(o, f): (usize, usize)| rows().map(|(x, g)| f64::from(g[o]) * f64::from(x[f])).sum::<f64>();
    let bias = |o: usize| rows().map(|(_, g)| f64::from(g[o])).sum::<f64>();
    (0..outputs)
        .flat_map(|o| (0..features).map(move |f| (o, f)))
        .map(weight)
        .chain((0..outputs).map(bias))
        .map(|v| v as f32)
        .collect()
}

/// Prints the largest difference between `gpu` and `cpu`; `Err` unless it is within
/// `TOLERANCE · max(1, max |cpu|)` (a NaN anywhere fails).
fn compare(what: &str, gpu: &[f32], cpu: &[f32]) -> Result<(), String> {
    let scale = cpu.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let worst =
        gpu.iter().zip(cpu).map(|(g, c)| (g - c).abs()).fold(0.0f32, |m, d| if d > m || d.is_nan() { d } else { m });
    println!("  {what:<20} {worst:.1e}");
    if worst <= TOLERANCE * scale {
        Ok(())
    } else {
        Err(format!("{what}: the GPU is {worst:e} away from the CPU, more than {TOLERANCE:e} × {scale}"))
    }
}

// ---------------------------------------------------------------------------------------
// Data

/// What is predicted, and so which loss trains it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Task {
    /// One logit per class, cross-entropy against an `i32` class index per row.
    Classes(usize),
    /// One logit, binary cross-entropy with logits against an `f32` 0 or 1 per row.
    Binary,
}

impl Task {
    fn outputs(self) -> usize {
        match self {
            Task::Classes(classes) => classes,
            Task::Binary => 1,
        }
    }

    /// The targets of `labels` as the device holds them: `i32` class indices, or `f32` 0 or 1
    /// (as their 32 bits).
    fn targets(self, labels: &[u32]) -> Vec<u32> {
        match self {
            Task::Classes(_) => labels.to_vec(),
            Task::Binary => labels.iter().map(|&l| (l as f32).to_bits()).collect(),
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Task::Classes(classes) => write!(f, "{classes} classes (cross-entropy)"),
            Task::Binary => write!(f, "yes or no (binary cross-entropy with logits)"),
        }
    }
}

/// Rows of standardised features with their labels.
struct Split {
    /// `rows × features`, row-major.
    x: Vec<f32>,
    labels: Vec<u32>,
}

impl Split {
    fn rows(&self) -> usize {
        self.labels.len()
    }
}

struct Dataset {
    name: &'static str,
    task: Task,
    features: usize,
    train: Split,
    test: Split,
    /// Defaults that train this set well in seconds on Mesa's lavapipe.
    epochs: usize,
    learning_rate: f32,
}

/// The UCI handwritten digits as scikit-learn ships them: one image per line, its 64 pixel
/// counts (0 to 16) and then its digit.
fn digits() -> Result<Dataset, Box<dyn Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_string(&mut text)?;
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let values: Vec<f32> = line.split(',').map(str::parse).collect::<Result<_, _>>()?;
        let (label, pixels) = values.split_last().ok_or("an empty line in digits.csv.gz")?;
        x.extend_from_slice(pixels);
        labels.push(*label as u32);
    }
    let (train, test) = split(x, labels, 64);
    Ok(Dataset { name: "digits", task: Task::Classes(10), features: 64, train, test, epochs: 30, learning_rate: 0.5 })
}

/// 2000 people with a height (cm) and a weight (kg), labelled by their body-mass index
/// `weight / height²` (kg/m²): for `Classes(3)` underweight (< 18.5), normal (< 25) or
/// overweight; for `Binary` whether they need a diet (BMI ≥ 25).
fn bmi(task: Task) -> Dataset {
    let mut rng = Rng::new(SEED ^ 0xb41);
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let height = 170.0 + 9.0 * rng.normal();
        let bmi = (23.5 + 4.5 * rng.normal()).clamp(14.0, 45.0);
        let weight = bmi * (height / 100.0).powi(2);
        x.extend([height as f32, weight as f32]);
        labels.push(match task {
            Task::Binary => u32::from(bmi >= 25.0),
            Task::Classes(_) if bmi < 18.5 => 0,
            Task::Classes(_) if bmi < 25.0 => 1,
            Task::Classes(_) => 2,
        });
    }
    let (train, test) = split(x, labels, 2);
    Dataset {
        name: if task == Task::Binary { "diet" } else { "bmi" },
        task,
        features: 2,
        train,
        test,
        epochs: 30,
        learning_rate: 2.0,
    }
}

/// Shuffles the rows with a fixed seed, keeps one in five for testing, and standardises each
/// feature with the training rows' mean and standard deviation (a constant one becomes 0).
fn split(x: Vec<f32>, labels: Vec<u32>, features: usize) -> (Split, Split) {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    Rng::new(SEED).shuffle(&mut order);
    let (test_rows, train_rows) = order.split_at(labels.len() / 5);
    let take = |rows: &[usize]| Split {
        x: rows.iter().flat_map(|&r| &x[r * features..][..features]).copied().collect(),
        labels: rows.iter().map(|&r| labels[r]).collect(),
    };
    let (mut train, mut test) = (take(train_rows), take(test_rows));
    for f in 0..features {
        let column = || train.x.iter().skip(f).step_by(features).map(|&v| f64::from(v));
        let mean = column().sum::<f64>() / train.rows() as f64;
        let std = (column().map(|v| (v - mean).powi(2)).sum::<f64>() / train.rows() as f64).sqrt();
        let scale = if std > 0.0 { 1.0 / std } else { 0.0 };
        // Both hold whole rows, so the stride stays on column `f` across the two.
        for v in train.x.iter_mut().chain(test.x.iter_mut()).skip(f).step_by(features) {
            *v = ((f64::from(*v) - mean) * scale) as f32;
        }
    }
    (train, test)
}

/// A small deterministic generator (xorshift64*): the same seed, the same run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, (self.next_u64() % (i as u64 + 1)) as usize);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Command line and picture

struct Args {
    dataset: String,
    epochs: Option<usize>,
    learning_rate: Option<f32>,
    batch: usize,
    /// ReLU units of a hidden layer (0: none).
    hidden: usize,
    head: Head,
    plot: Option<PathBuf>,
    quiet: bool,
}

impl Args {
    fn parse() -> Result<Self, String> {
        fn value<T: FromStr>(flag: &str, text: Option<String>) -> Result<T, String> {
            let text = text.ok_or(format!("{flag} needs a value (try --help)"))?;
            text.parse().map_err(|_| format!("{flag}: {text:?} is not a valid value"))
        }
        let mut args = Self {
            dataset: "digits".into(),
            epochs: None,
            learning_rate: None,
            batch: 64,
            hidden: 0,
            head: Head::Plain,
            plot: None,
            quiet: false,
        };
        let mut words = std::env::args().skip(1);
        while let Some(flag) = words.next() {
            match flag.as_str() {
                "--dataset" => args.dataset = value(&flag, words.next())?,
                "--epochs" => args.epochs = Some(value(&flag, words.next())?),
                "--lr" => args.learning_rate = Some(value(&flag, words.next())?),
                "--batch" => args.batch = value(&flag, words.next())?,
                "--hidden" => args.hidden = value(&flag, words.next())?,
                "--head" => {
                    args.head = match value::<String>(&flag, words.next())?.as_str() {
                        "plain" => Head::Plain,
                        "fused" => Head::Fused,
                        other => return Err(format!("--head: {other:?} is neither plain nor fused")),
                    }
                }
                "--plot" => args.plot = Some(value(&flag, words.next())?),
                "--quiet" => args.quiet = true,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                _ => return Err(format!("unknown argument {flag:?} (try --help)")),
            }
        }
        if args.epochs == Some(0) || args.batch == 0 {
            return Err("--epochs and --batch must be at least 1".into());
        }
        Ok(args)
    }
}

/// Draws the loss of every training step (faint), its mean over each epoch (at the epoch's
/// middle) and the test loss after each epoch, against epochs on a log scale, as SVG.
fn plot_losses(path: &Path, data: &Dataset, history: &[EpochStats]) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    let steps = history[0].step_losses.len() as f32;
    let each_step: Vec<(f32, f32)> = (1..)
        .zip(history.iter().flat_map(|e| &e.step_losses))
        .map(|(step, &loss)| (step as f32 / steps, loss))
        .collect();
    let epochs = || (1..).zip(history).map(|(epoch, e)| (epoch as f32, e));
    let train: Vec<(f32, f32)> = epochs().map(|(epoch, e)| (epoch - 0.5, e.loss)).collect();
    let test: Vec<(f32, f32)> = epochs().map(|(epoch, e)| (epoch, e.test_loss)).collect();
    let losses = || each_step.iter().chain(&test).map(|&(_, loss)| loss);
    // Whole decades, so that the log axis is labelled.
    let low = 10f32.powf(losses().fold(f32::MAX, f32::min).log10().floor());
    let high = 10f32.powf(losses().fold(f32::MIN, f32::max).log10().ceil());

    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let model = match data.task {
        Task::Classes(_) => "softmax regression",
        Task::Binary => "logistic regression",
    };
    let caption = format!("{model} on {}: {}", data.name, data.task);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f32..history.len() as f32, (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|epoch| format!("{epoch}"))
        .y_desc("loss (log scale)")
        .draw()?;
    let line = |color: RGBColor| move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2));
    chart
        .draw_series(LineSeries::new(each_step, BLUE.mix(0.25)))?
        .label("training loss, each step")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.mix(0.25)));
    chart
        .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))?
        .label("training loss, epoch mean")
        .legend(line(BLUE));
    chart
        .draw_series(LineSeries::new(test, RED.stroke_width(2)))?
        .label("test loss, after each epoch")
        .legend(line(RED));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
