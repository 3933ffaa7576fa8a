//! The losses on burn's cubecl backend: this crate's kernels recorded on the `wgpu::Buffer`s
//! under burn's tensors, submitted on burn's queue after burn's queued work.
//!
//! These run later, on burn's fusion stream, so they cannot return an `Err`: a failure is
//! kept for the public function, which takes it when it reads the batch state back.

use std::sync::{Mutex, PoisonError};

use burn::backend::Scalar;
use burn::backend::ops::IntTensorOps;
use burn::tensor::{DType, Shape};
use burn_cubecl::cubecl::wgpu::{AutoCompiler, WgpuServer};
use burn_cubecl::kernel::{cast, into_contiguous};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeDevice};
use wgpu_loss::{Error, Gpu, LinearBuffers, LossBuffers, Result, WeightLayout, Workspace};

use crate::device::shared;
use crate::ops::{CeArgs, LinearArgs, LossOps, loss_len};

use burn::tensor::wgpu::wgpu;

type Encoder = wgpu::CommandEncoder;
type Slice<'a> = wgpu::BufferSlice<'a>;

static FAILURE: Mutex<Option<Error>> = Mutex::new(None);

/// The error of the last recording that failed, if any (taken: reported once).
pub(crate) fn take_failure() -> Option<Error> {
    FAILURE.lock().unwrap_or_else(PoisonError::into_inner).take()
}

impl LossOps for CubeBackend {
    fn wgpu_loss_cross_entropy(logits: CubeTensor, targets: CubeTensor, args: CeArgs) -> (CubeTensor, CubeTensor) {
        let (loss, _, status) = cross_entropy(logits, Targets::Index(targets), &args, false);
        (loss, status)
    }

    fn wgpu_loss_cross_entropy_with_grad(
        logits: CubeTensor, targets: CubeTensor, args: CeArgs,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let (loss, grad, status) = cross_entropy(logits, Targets::Index(targets), &args, true);
        (loss, grad.expect("asked for the gradient"), status)
    }

    fn wgpu_loss_cross_entropy_probs(
        logits: CubeTensor, targets: CubeTensor, args: CeArgs,
    ) -> (CubeTensor, CubeTensor) {
        let (loss, _, status) = cross_entropy(logits, Targets::Probs(targets), &args, false);
        (loss, status)
    }

    fn wgpu_loss_cross_entropy_probs_with_grad(
        logits: CubeTensor, targets: CubeTensor, args: CeArgs,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let (loss, grad, status) = cross_entropy(logits, Targets::Probs(targets), &args, true);
        (loss, grad.expect("asked for the gradient"), status)
    }

    fn wgpu_loss_linear_cross_entropy(
        hidden: CubeTensor, weight: CubeTensor, bias: CubeTensor, targets: CubeTensor, args: LinearArgs,
    ) -> (CubeTensor, CubeTensor) {
        let (loss, _, status) = linear_cross_entropy(hidden, weight, bias, targets, None, &args);
        (loss, status)
    }

    fn wgpu_loss_linear_cross_entropy_with_grad(
        hidden: CubeTensor, weight: CubeTensor, bias: CubeTensor, targets: CubeTensor, grad_output: CubeTensor,
        args: LinearArgs,
    ) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
        let (loss, grads, status) = linear_cross_entropy(hidden, weight, bias, targets, Some(grad_output), &args);
        let [gh, gw, gb] = grads.expect("asked for the gradients");
        (loss, gh, gw, gb, status)
    }
}

/// A cross-entropy's targets: class indices (any integer type) or probabilities.
enum Targets {
    Index(CubeTensor),
    Probs(CubeTensor),
}

fn cross_entropy(
    logits: CubeTensor, targets: Targets, args: &CeArgs, with_grad: bool,
) -> (CubeTensor, Option<CubeTensor>, CubeTensor) {
    let logits = into_contiguous(logits);
    let (targets, probs) = match targets {
        Targets::Index(t) => (i32_targets(t), false),
        Targets::Probs(t) => (into_contiguous(t), true),
    };
    let loss = empty_like(&logits, Shape::new([loss_len(&args.opts, args.loss_rows())]), DType::F32);
    let grad = with_grad.then(|| empty_like(&logits, logits.meta.shape().clone(), DType::F32));
    let status = empty_like(&logits, Shape::new([4]), DType::I32);
    let mut outputs = vec![&loss];
    outputs.extend(grad.as_ref());
    submit(&[&logits, &targets], &outputs, &status, |gpu, ws, encoder, s| {
        let mut buffers = LossBuffers::new(s[1]).input(s[0]).loss(s[2]);
        if with_grad {
            buffers = buffers.grad(s[3]);
        }
        let encode = if probs { Gpu::encode_cross_entropy_probs } else { Gpu::encode_cross_entropy };
        encode(gpu, encoder, ws, &buffers, args.rows, args.classes, &args.opts)
    });
    (loss, grad, status)
}

fn linear_cross_entropy(
    hidden: CubeTensor, weight: CubeTensor, bias: CubeTensor, targets: CubeTensor, grad_output: Option<CubeTensor>,
    args: &LinearArgs,
) -> (CubeTensor, Option<[CubeTensor; 3]>, CubeTensor) {
    let [hidden, weight, bias] = [hidden, weight, bias].map(into_contiguous);
    let targets = i32_targets(targets);
    let grad_output = grad_output.map(into_contiguous);
    let loss = empty_like(&hidden, Shape::new([loss_len(&args.opts, args.tokens)]), DType::F32);
    let grads = grad_output
        .is_some()
        .then(|| [&hidden, &weight, &bias].map(|t| empty_like(t, t.meta.shape().clone(), DType::F32)));
    let status = empty_like(&hidden, Shape::new([4]), DType::I32);
    // Inputs: h, W, b, targets, then grad_output (read in its slot even when unused); outputs:
    // the loss, then ∂h, ∂W, ∂b.
    let grad_output = grad_output.unwrap_or_else(|| hidden.clone());
    let mut outputs = vec![&loss];
    outputs.extend(grads.iter().flatten());
    submit(&[&hidden, &weight, &bias, &targets, &grad_output], &outputs, &status, |gpu, ws, encoder, s| {
        let mut buffers = LinearBuffers::new(s[0], s[1], s[3]).weight_layout(WeightLayout::HiddenByVocab).loss(s[5]);
        if args.has_bias {
            buffers = buffers.bias(s[2]);
        }
        if grads.is_some() {
            buffers = buffers.grad_hidden(s[6]).grad_weight(s[7]);
            if args.has_bias {
                buffers = buffers.grad_bias(s[8]);
            }
            if args.scaled {
                buffers = buffers.grad_output(s[4]);
            }
        }
        gpu.encode_linear_cross_entropy(encoder, ws, &buffers, args.tokens, args.hidden_size, args.vocab, &args.opts)
    });
    (loss, grads, status)
}

/// Targets as contiguous `i32`: other integer types are clamped into `i32`'s range first,
/// so an out-of-range target stays out of range.
fn i32_targets(targets: CubeTensor) -> CubeTensor {
    if targets.dtype == DType::I32 {
        return into_contiguous(targets);
    }
    let clamped = CubeBackend::int_clamp(targets, Scalar::from(i32::MIN as i64), Scalar::from(i32::MAX as i64));
    into_contiguous(cast(clamped, DType::I32))
}

/// A new contiguous tensor on `like`'s device, left for the kernels to write.
fn empty_like(like: &CubeTensor, shape: Shape, dtype: DType) -> CubeTensor {
    let handle = like.client.empty(shape.num_elements() * dtype.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape, handle, dtype)
}

/// Records `record` on the buffers under `inputs` then `outputs` (slices of exactly their
/// bytes, in that order), copies the batch state into `status`, and submits on burn's
/// queue after burn's pending work; a failure is kept for [`take_failure`].
fn submit(
    inputs: &[&CubeTensor], outputs: &[&CubeTensor], status: &CubeTensor,
    record: impl FnOnce(&Gpu, &mut Workspace, &mut Encoder, &[Slice<'_>]) -> Result<()>,
) {
    if let Err(error) = try_submit(inputs, outputs, status, record) {
        *FAILURE.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

fn try_submit(
    inputs: &[&CubeTensor], outputs: &[&CubeTensor], status: &CubeTensor,
    record: impl FnOnce(&Gpu, &mut Workspace, &mut Encoder, &[Slice<'_>]) -> Result<()>,
) -> Result<()> {
    let shared = shared(&status.device).ok_or_else(|| unregistered(&status.device))?;
    let device_error = |e: &dyn std::fmt::Debug| Error::Device(format!("burn's wgpu runtime: {e:?}"));
    // Taking a resource submits burn's queued work on its stream; holding it keeps the
    // allocation where it is until our submission is made.
    let held = inputs
        .iter()
        .chain(outputs)
        .chain([&status])
        .map(|t| t.client.get_resource::<WgpuServer<AutoCompiler>>(t.handle.clone()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| device_error(&e))?;
    status.client.flush().map_err(|e| device_error(&e))?;
    let bytes = |t: &CubeTensor| (t.meta.num_elements() * t.dtype.size()) as u64;
    let mut scratch = shared.scratch.lock().unwrap_or_else(PoisonError::into_inner);
    let (workspace, spare) = &mut *scratch;
    let gpu = &shared.gpu;
    // burn keeps many tensors in one pooled buffer, and one dispatch cannot bind a buffer
    // both read-only and writable: an output sharing its buffer with any other tensor of
    // the op is written to a buffer of ours and copied into place after.
    let places: Vec<(wgpu::Buffer, u64)> =
        held.iter().map(|r| (r.resource().buffer.clone(), r.resource().offset)).collect();
    let mut routed = Vec::new();
    for (i, t) in outputs.iter().enumerate() {
        let k = inputs.len() + i;
        let bound = &places[..inputs.len() + outputs.len()];
        let shared_buffer = bound.iter().enumerate().any(|(j, (b, _))| j != k && *b == places[k].0);
        if shared_buffer {
            routed.push((k, spare_buffer(gpu, spare, routed.len(), bytes(t))));
        }
    }
    let slices: Vec<Slice<'_>> = (0..inputs.len() + outputs.len())
        .map(|k| {
            let t = if k < inputs.len() { inputs[k] } else { outputs[k - inputs.len()] };
            match routed.iter().find(|(j, _)| *j == k) {
                Some((_, buffer)) => buffer.slice(..bytes(t)),
                None => places[k].0.slice(places[k].1..places[k].1 + bytes(t)),
            }
        })
        .collect();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    record(gpu, workspace, &mut encoder, &slices)?;
    for (k, buffer) in &routed {
        let (target, offset) = &places[*k];
        encoder.copy_buffer_to_buffer(buffer, 0, target, *offset, bytes(outputs[*k - inputs.len()]));
    }
    let (target, offset) = places.last().expect("the status is held");
    encoder.copy_buffer_to_buffer(workspace.status_buffer(), 0, target, *offset, 16);
    gpu.queue().submit([encoder.finish()]);
    Ok(())
}

/// The `index`-th buffer of ours for routed outputs, at least `bytes` long (kept and reused).
fn spare_buffer(gpu: &Gpu, spare: &mut Vec<wgpu::Buffer>, index: usize, bytes: u64) -> wgpu::Buffer {
    if spare.len() <= index {
        spare.push(new_spare(gpu, bytes));
    } else if spare[index].size() < bytes {
        spare[index] = new_spare(gpu, bytes);
    }
    spare[index].clone()
}

fn new_spare(gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("wgpu-loss-burn output"),
        size: bytes.next_power_of_two().max(16),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

fn unregistered(device: &CubeDevice) -> Error {
    Error::InvalidArgument { argument: "device", message: format!("burn device {device:?} was not registered") }
}
