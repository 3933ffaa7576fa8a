//! The two-layer model of `--hidden N` / `--head fused`: `x → ReLU(x·W1ᵀ + b1) → W2·+b2 →
//! cross-entropy`, every product and its gradient through wgpu-loss's encode API. The
//! output layer and its loss are either `encode_linear` then `encode_cross_entropy` (the
//! gradient written over the logits) then `encode_linear_backward` (`--head plain`), or one
//! `encode_linear_cross_entropy` that never holds the logits (`--head fused`): the same
//! kernels, so the two train bit for bit alike. Only the ReLU and the SGD update are this
//! example's own (`mlp.wgsl`). As the linear model, a whole epoch is one submission.

use std::error::Error;

use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Gpu, LinearBuffers, LossBuffers, Workspace, cpu};

use super::{Dataset, DeviceSplit, EpochStats, F32, Rng, Task, compare, dispatch, pipelines, read_back, values};

/// How the output layer meets its loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The logits in a buffer, then the loss and its gradient, then the layer's gradients.
    Plain,
    /// `encode_linear_cross_entropy`: the logits are never stored.
    Fused,
}

/// A layer's weight and bias on the host.
type Parameters = (Vec<f32>, Vec<f32>);

/// A layer's parameters and their gradients, and the bind groups of their SGD updates.
struct Layer {
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
    grad_weight: wgpu::Buffer,
    grad_bias: wgpu::Buffer,
    sgd: [(wgpu::BindGroup, usize); 2],
}

/// A mini-batch (or the test set): its rows, its ReLU bind group and the workspaces of its
/// five wgpu-loss ops (one per op recorded into the epoch's encoder).
struct Batch {
    first_row: usize,
    rows: usize,
    relu: wgpu::BindGroup,
    workspaces: [Workspace; 5],
}

/// `mlp.wgsl`'s pipelines and their one bind-group layout.
struct Kernels {
    layout: wgpu::BindGroupLayout,
    relu_forward: wgpu::ComputePipeline,
    relu_backward: wgpu::ComputePipeline,
    sgd_step: wgpu::ComputePipeline,
}

pub struct Mlp {
    gpu: Gpu,
    kernels: Kernels,
    head: Head,
    classes: usize,
    features: usize,
    hidden: usize,
    train: DeviceSplit,
    test: DeviceSplit,
    layers: (Option<Layer>, Layer),
    /// The hidden activations, their gradient, and the plain head's logits (then their
    /// gradient), of the largest batch.
    act: wgpu::Buffer,
    grad_act: wgpu::Buffer,
    logits: wgpu::Buffer,
    /// Each step's loss and accuracy, then the test set's.
    losses: wgpu::Buffer,
    accuracies: wgpu::Buffer,
    batches: Vec<Batch>,
    /// The initial parameters, for [`Mlp::check_step`]: `(W1, b1)` and `(W2, b2)`.
    initial: (Option<Parameters>, Parameters),
}

/// A uniform `Params` block of `mlp.wgsl`.
fn params(device: &wgpu::Device, n: usize, learning_rate: f32) -> wgpu::Buffer {
    let words = [n as u32, learning_rate.to_bits(), 0, 0];
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("mlp params"),
        contents: bytemuck::cast_slice(&words),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

impl Mlp {
    /// The model for `data` (class indices only) with `hidden` ReLU units (none: the head
    /// reads the features), He-initialised weights from `rng`, zero biases.
    pub fn new(
        gpu: Gpu, data: &Dataset, (hidden, head): (usize, Head), batch_rows: usize, learning_rate: f32, rng: &mut Rng,
    ) -> Result<Self, Box<dyn Error>> {
        let Task::Classes(classes) = data.task else {
            return Err("--hidden and --head fused need a class-index data set (digits, bmi)".into());
        };
        let device = gpu.device().clone();
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let init = |contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents, usage })
        };
        let zeros = |values: usize| init(&vec![0; values.max(1) * F32 as usize]);
        let kernels = Kernels::new(&device);
        let features = data.features;
        let mut uniform = |fan_in: usize, n: usize| {
            let scale = (6.0 / fan_in as f64).sqrt();
            (0..n).map(|_| ((2.0 * rng.uniform() - 1.0) * scale) as f32).collect::<Vec<f32>>()
        };
        let first = (hidden > 0).then(|| (uniform(features, hidden * features), vec![0.0; hidden]));
        let inputs = if hidden > 0 { hidden } else { features };
        let second = (uniform(inputs, classes * inputs), vec![0.0; classes]);
        let layer = |(w, b): &Parameters| {
            let (weight, bias) = (init(bytemuck::cast_slice(w)), init(bytemuck::cast_slice(b)));
            let (grad_weight, grad_bias) = (zeros(w.len()), zeros(b.len()));
            let sgd = [(&weight, &grad_weight, w.len()), (&bias, &grad_bias, b.len())]
                .map(|(v, g, n)| (kernels.bind(&device, params(&device, n, learning_rate), v, g), n));
            Layer { weight, bias, grad_weight, grad_bias, sgd }
        };
        let layers = (first.as_ref().map(layer), layer(&second));
        let upload = |split: &super::Split| DeviceSplit {
            x: init(bytemuck::cast_slice(&split.x)),
            targets: init(bytemuck::cast_slice(&data.task.targets(&split.labels))),
        };
        let (train, test) = (upload(&data.train), upload(&data.test));
        let most_rows = batch_rows.min(data.train.rows()).max(data.test.rows());
        let (act, grad_act, logits) =
            (zeros(most_rows * hidden), zeros(most_rows * hidden), zeros(most_rows * classes));
        let batch = |first_row: usize, rows: usize| Batch {
            first_row,
            rows,
            relu: kernels.bind(&device, params(&device, rows * hidden, 0.0), &act, &grad_act),
            workspaces: std::array::from_fn(|_| Workspace::new(&gpu)),
        };
        let train_rows = data.train.rows();
        let mut batches: Vec<Batch> =
            (0..train_rows).step_by(batch_rows).map(|first| batch(first, batch_rows.min(train_rows - first))).collect();
        batches.push(batch(0, data.test.rows()));
        let (losses, accuracies) = (zeros(batches.len()), zeros(batches.len()));
        Ok(Self {
            kernels,
            head,
            classes,
            features,
            hidden,
            train,
            test,
            layers,
            act,
            grad_act,
            logits,
            losses,
            accuracies,
            batches,
            initial: (first, second),
            gpu,
        })
    }

    /// Training steps per epoch.
    pub fn steps(&self) -> usize {
        self.batches.len() - 1
    }

    /// Records batch `k`'s forward pass, loss and accuracy (into slot `k`) and, with
    /// `backward`, both layers' gradients. `k == steps()` is the test set.
    fn record_batch(&mut self, encoder: &mut wgpu::CommandEncoder, k: usize, backward: bool) -> wgpu_loss::Result<()> {
        let (classes, features, hidden, steps) = (self.classes, self.features, self.hidden, self.steps());
        let split = if k == steps { &self.test } else { &self.train };
        let batch = &mut self.batches[k];
        let rows = batch.rows;
        let x = values(&split.x, batch.first_row * features, rows * features);
        let targets = values(&split.targets, batch.first_row, rows);
        let [ws_first, ws_logits, ws_loss, ws_head_back, ws_first_back] = &mut batch.workspaces;
        let gpu = &self.gpu;
        let head_in = match &self.layers.0 {
            Some(first) => {
                let act = values(&self.act, 0, rows * hidden);
                let buffers = LinearBuffers::new(x, first.weight.slice(..), targets).bias(first.bias.slice(..));
                gpu.encode_linear(encoder, ws_first, &buffers, act, rows, features, hidden)?;
                dispatch(encoder, &batch.relu, &[(&self.kernels.relu_forward, rows * hidden)]);
                act
            }
            None => x,
        };
        let inputs = if hidden > 0 { hidden } else { features };
        let (loss, accuracy) = (values(&self.losses, k, 1), values(&self.accuracies, k, 1));
        let second = &self.layers.1;
        let mut head = LinearBuffers::new(head_in, second.weight.slice(..), targets).bias(second.bias.slice(..));
        let opts = CrossEntropyOptions::default(); // mean over the batch
        if backward {
            head = head.grad_weight(second.grad_weight.slice(..)).grad_bias(second.grad_bias.slice(..));
            if hidden > 0 {
                head = head.grad_hidden(values(&self.grad_act, 0, rows * hidden));
            }
        }
        match self.head {
            Head::Plain => {
                let logits = values(&self.logits, 0, rows * classes);
                gpu.encode_linear(encoder, ws_logits, &head, logits, rows, inputs, classes)?;
                let ce = LossBuffers::new(targets).input(logits).loss(loss).accuracy(accuracy);
                let ce = if backward { ce.grad_in_place() } else { ce };
                gpu.encode_cross_entropy(encoder, ws_loss, &ce, rows, classes, &opts)?;
                if backward {
                    gpu.encode_linear_backward(encoder, ws_head_back, &head, logits, rows, inputs, classes)?;
                }
            }
            Head::Fused => {
                let head = head.loss(loss).accuracy(accuracy);
                gpu.encode_linear_cross_entropy(encoder, ws_loss, &head, rows, inputs, classes, &opts)?;
            }
        }
        if let (true, Some(first)) = (backward, &self.layers.0) {
            let grad_pre = values(&self.grad_act, 0, rows * hidden);
            dispatch(encoder, &batch.relu, &[(&self.kernels.relu_backward, rows * hidden)]);
            let buffers = LinearBuffers::new(x, first.weight.slice(..), targets)
                .bias(first.bias.slice(..))
                .grad_weight(first.grad_weight.slice(..))
                .grad_bias(first.grad_bias.slice(..));
            gpu.encode_linear_backward(encoder, ws_first_back, &buffers, grad_pre, rows, features, hidden)?;
        }
        Ok(())
    }

    /// Records the SGD update of every parameter.
    fn record_update(&self, encoder: &mut wgpu::CommandEncoder) {
        for layer in self.layers.0.iter().chain([&self.layers.1]) {
            for (group, n) in &layer.sgd {
                dispatch(encoder, group, &[(&self.kernels.sgd_step, *n)]);
            }
        }
    }

    /// One step per mini-batch, then the test set, in one submission; what it measured.
    pub fn train_epoch(&mut self) -> Result<EpochStats, Box<dyn Error>> {
        let steps = self.steps();
        let mut encoder = self.gpu.device().create_command_encoder(&Default::default());
        for k in 0..steps {
            self.record_batch(&mut encoder, k, true)?;
            self.record_update(&mut encoder);
        }
        self.record_batch(&mut encoder, steps, false)?;
        let sources = [(&self.losses, steps + 1), (&self.accuracies, steps + 1)];
        let [losses, accuracies] =
            read_back(&self.gpu, encoder, sources)?.map(|w| w.into_iter().map(f32::from_bits).collect::<Vec<f32>>());
        let rows: Vec<f32> = self.batches.iter().map(|b| b.rows as f32).collect();
        let train_rows: f32 = rows[..steps].iter().sum();
        let weighted = |v: &[f32]| v.iter().zip(&rows).take(steps).map(|(v, r)| v * r).sum::<f32>() / train_rows;
        Ok(EpochStats {
            step_losses: losses[..steps].to_vec(),
            loss: weighted(&losses),
            train_accuracy: weighted(&accuracies),
            test_loss: losses[steps],
            test_correct: (accuracies[steps] * rows[steps]).round() as usize,
        })
    }

    /// The first mini-batch's loss and every parameter gradient (no update) against the CPU:
    /// the hidden layer in f64 here, the output layer and its loss with wgpu-loss's twin
    /// `cpu::linear_cross_entropy_with_grad`.
    pub fn check_step(&mut self, data: &Dataset) -> Result<(), Box<dyn Error>> {
        let (rows, features, hidden, classes) = (self.batches[0].rows, self.features, self.hidden, self.classes);
        let mut encoder = self.gpu.device().create_command_encoder(&Default::default());
        self.record_batch(&mut encoder, 0, true)?;
        let second = &self.layers.1;
        let mut sources =
            vec![(&self.losses, 1), (&second.grad_weight, second_len(self)), (&second.grad_bias, classes)];
        if let Some(first) = &self.layers.0 {
            sources.extend([(&first.grad_weight, hidden * features), (&first.grad_bias, hidden)]);
        }
        self.gpu.queue().submit([encoder.finish()]);
        let got: Vec<Vec<f32>> = sources
            .iter()
            .map(|(b, n)| self.gpu.read_buffer::<f32>(b.slice(..(*n * F32 as usize) as u64)))
            .collect::<Result<_, _>>()?;
        let x = &data.train.x[..rows * features];
        let targets: Vec<i32> = data.train.labels[..rows].iter().map(|&l| l as i32).collect();
        let act: Vec<f32> = match &self.initial.0 {
            Some((w1, b1)) => linear_relu(x, w1, b1, features, hidden),
            None => x.to_vec(),
        };
        let (w2, b2) = &self.initial.1;
        let inputs = if hidden > 0 { hidden } else { features };
        let opts = CrossEntropyOptions::default();
        let want =
            cpu::linear_cross_entropy_with_grad(&act, w2, Some(b2), &targets, rows, inputs, classes, &opts, &[1.0])?;
        println!("one step on {rows} rows against the CPU (f64) reference, max |gpu - cpu|:");
        compare("loss", &got[0], &want.loss)?;
        compare("d loss / d W2", &got[1], &want.grad_weight)?;
        compare("d loss / d b2", &got[2], want.grad_bias.as_deref().unwrap_or_default())?;
        if hidden > 0 {
            let grad_pre: Vec<f32> =
                want.grad_hidden.iter().zip(&act).map(|(&g, &a)| if a > 0.0 { g } else { 0.0 }).collect();
            let (dw1, db1) = weight_grads(x, &grad_pre, features, hidden);
            compare("d loss / d W1", &got[3], &dw1)?;
            compare("d loss / d b1", &got[4], &db1)?;
        }
        Ok(())
    }

    /// Writes the training rows in `order` over the device's copy.
    pub fn upload_train_rows(&self, data: &Dataset, order: &[usize]) {
        super::upload_rows(&self.gpu, &self.train, data, order);
    }

    /// Asks each batch's loss workspace whether the device met a class index out of range.
    pub fn check_targets(&mut self) -> wgpu_loss::Result<()> {
        let gpu = &self.gpu;
        self.batches.iter_mut().try_for_each(|b| b.workspaces[2].check_targets(gpu))
    }
}

/// Values in the output layer's weight.
fn second_len(m: &Mlp) -> usize {
    m.classes * if m.hidden > 0 { m.hidden } else { m.features }
}

/// `ReLU(x·W1ᵀ + b1)` in f64, rounded to f32.
fn linear_relu(x: &[f32], w: &[f32], b: &[f32], features: usize, hidden: usize) -> Vec<f32> {
    x.chunks(features)
        .flat_map(|row| {
            (0..hidden).map(move |j| {
                let dot: f64 = row.iter().zip(&w[j * features..]).map(|(&x, &w)| f64::from(x) * f64::from(w)).sum();
                (f64::from(b[j]) + dot).max(0.0) as f32
            })
        })
        .collect()
}

/// `gᵀ·x` and the column sums of `g`, in f64.
fn weight_grads(x: &[f32], g: &[f32], features: usize, outputs: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = || x.chunks(features).zip(g.chunks(outputs));
    let weight = (0..outputs * features)
        .map(|i| rows().map(|(x, g)| f64::from(g[i / features]) * f64::from(x[i % features])).sum::<f64>() as f32)
        .collect();
    let bias = (0..outputs).map(|o| rows().map(|(_, g)| f64::from(g[o])).sum::<f64>() as f32).collect();
    (weight, bias)
}

impl Kernels {
    fn new(device: &wgpu::Device) -> Self {
        let storage = wgpu::BufferBindingType::Storage { read_only: false };
        let (layout, [relu_forward, relu_backward, sgd_step]) = pipelines(
            device,
            "mlp",
            wgpu::include_wgsl!("mlp.wgsl"),
            &[wgpu::BufferBindingType::Uniform, storage, storage],
            ["relu_forward", "relu_backward", "sgd_step"],
        );
        Self { relu_forward, relu_backward, sgd_step, layout }
    }

    /// A bind group of `params`, `values` and `grads`.
    fn bind(
        &self, device: &wgpu::Device, params: wgpu::Buffer, values: &wgpu::Buffer, grads: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        let resources = [params.as_entire_binding(), values.as_entire_binding(), grads.as_entire_binding()];
        let entries: Vec<wgpu::BindGroupEntry<'_>> =
            (0..).zip(resources).map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource }).collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("mlp"),
            layout: &self.layout,
            entries: &entries,
        })
    }
}
