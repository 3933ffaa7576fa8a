//! Fused linear + cross-entropy (shaders/linear_cross_entropy/ and the cross-entropy
//! kernels): the loss of `h·Wᵀ + b` and its gradients with respect to `h`, `W` and `b`,
//! without ever holding the `tokens × vocab` logits. Token chunks as Liger-Kernel's: per
//! chunk, the logits into scratch, the fused cross-entropy kernel turns them into their
//! gradient G in place, then `∂h = G·W`, `∂W += Gᵀ·h` and `∂b += Σ G` — validate →
//! layout → record, as every op.

mod buffers;
mod plan;

pub use buffers::LinearBuffers;

use super::class_index::{Bound, Chunk, ClassIndexOp, Plan, Problem, Wanted, check_copy_target};
use crate::error::{Error, Result};
use crate::gpu::{BATCH_STATE_BYTES, Binding, Dispatch, Gpu, Layout, MatmulParams, Workspace, status_to_result};
use crate::options::{
    ClassTargets, CrossEntropyOptions, Extras, LinearCrossEntropyGrads, LinearCrossEntropyOutputs, LinearShape,
    Precision, WeightLayout,
};
use plan::{ChunkBindings, PartBindings, Product, Products};

/// A fused op's shape and options, checked: the linear layer's, and the cross-entropy's
/// over `tokens` rows of `vocab` classes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinearProblem<'o> {
    pub shape: LinearShape,
    pub ce: Problem<'o>,
    pub layout: WeightLayout,
}

impl<'o> LinearProblem<'o> {
    fn new(
        tokens: usize, hidden: usize, vocab: usize, opts: &'o CrossEntropyOptions, layout: WeightLayout,
    ) -> Result<Self> {
        let shape = LinearShape::new(tokens, hidden, vocab, opts)?;
        let ce = Problem::new(ClassIndexOp::CrossEntropy, tokens, vocab, opts)?;
        Ok(Self { shape, ce, layout })
    }

    /// `(tokens, hidden_size, vocab)` in 64 bits.
    fn dims(&self) -> (u64, u64, u64) {
        (self.shape.tokens as u64, self.shape.hidden as u64, self.shape.vocab as u64)
    }
}

impl CrossEntropyOptions {
    /// Checks a fused linear + cross-entropy call's shape and these options without a
    /// device — what [`Gpu::encode_linear_cross_entropy`] checks before it looks at buffers.
    ///
    /// ```
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// assert!(opts.check_linear_cross_entropy(8, 16, 100).is_ok());
    /// assert!(opts.check_linear_cross_entropy(8, 0, 100).is_err());
    /// ```
    pub fn check_linear_cross_entropy(&self, tokens: usize, hidden_size: usize, vocab: usize) -> Result<()> {
        LinearProblem::new(tokens, hidden_size, vocab, self, WeightLayout::default()).map(|_| ())
    }
}

/// Checks the caller's buffers against the problem: sizes, usages, something asked for, a
/// bias behind `grad_bias`, and no gradient in a buffer the products read.
fn check_buffers(problem: &LinearProblem<'_>, b: &LinearBuffers<'_>) -> Result<()> {
    check_inputs(problem, b)?;
    let tokens = problem.dims().0;
    Binding::check("targets", &b.targets, tokens)?;
    let loss_len = problem.ce.loss_len();
    for (argument, slice) in [("loss", &b.loss), ("grad_output", &b.grad_output)] {
        if let Some(slice) = slice {
            Binding::check(argument, slice, loss_len)?;
        }
    }
    for (argument, slice, words) in
        [("lse", &b.lse, tokens), ("argmax", &b.argmax, tokens), ("accuracy", &b.accuracy, 1)]
    {
        if let Some(slice) = slice {
            check_copy_target(argument, slice, words)?;
        }
    }
    if b.loss.is_none() && !b.wants_grads() && b.lse.is_none() && b.argmax.is_none() && b.accuracy.is_none() {
        return Err(Error::InvalidArgument {
            argument: "buffers",
            message: "neither the loss, a gradient nor an extra output was asked for".into(),
        });
    }
    Ok(())
}

/// Checks what the products read and write: the hidden states, weight and bias in their
/// precision, the gradients (f32), a bias behind `grad_bias`, and no gradient in a buffer
/// the products read.
fn check_inputs(problem: &LinearProblem<'_>, b: &LinearBuffers<'_>) -> Result<()> {
    let (tokens, hidden, vocab) = problem.dims();
    let bytes = b.precision.bytes();
    Binding::check_sized("hidden", &b.hidden, tokens * hidden, bytes)?;
    Binding::check_sized("weight", &b.weight, vocab * hidden, bytes)?;
    if let Some(bias) = &b.bias {
        Binding::check_sized("bias", bias, vocab, bytes)?;
    }
    let grads = [
        ("grad_hidden", &b.grad_hidden, tokens * hidden),
        ("grad_weight", &b.grad_weight, vocab * hidden),
        ("grad_bias", &b.grad_bias, vocab),
    ];
    for (argument, slice, words) in grads {
        if let Some(slice) = slice {
            Binding::check(argument, slice, words)?;
        }
    }
    if b.grad_bias.is_some() && b.bias.is_none() {
        return Err(Error::InvalidArgument { argument: "grad_bias", message: "asked for without a bias".into() });
    }
    let read = [("hidden", Some(&b.hidden)), ("weight", Some(&b.weight)), ("bias", b.bias.as_ref())];
    for (written, slice, _) in grads {
        let Some(slice) = slice else { continue };
        if let Some((name, _)) = read.iter().find(|(_, r)| r.is_some_and(|r| r.buffer() == slice.buffer())) {
            return Err(Error::InvalidArgument {
                argument: written,
                message: format!(
                    "its buffer also holds `{name}`, which the op reads; put the gradients in another buffer"
                ),
            });
        }
    }
    Ok(())
}

/// Records a checked problem on checked buffers: the layout, the cross-entropy's plan on the
/// scratch, the products around it chunk by chunk, all in one pass.
fn record(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, problem: &LinearProblem<'_>,
    b: &LinearBuffers<'_>,
) -> Result<()> {
    let per_token_words = 1 + u64::from(b.lse.is_some()) + u64::from(b.argmax.is_some() || b.accuracy.is_some());
    let budget = gpu.linear_scratch_bytes().saturating_sub(4 * per_token_words * problem.dims().0);
    let layout = plan::Layout::new(gpu, problem, budget)?;
    let vocab = problem.dims().2;
    let scratch = ws.logits_scratch(gpu, 4 * layout.chunk_tokens * vocab);
    let in_place = b.wants_grads();
    let whole = scratch.slice(..);
    let bound = Bound {
        precision: Precision::F32,
        in_place,
        input: (!in_place).then_some(whole),
        targets: b.targets,
        grad: in_place.then_some(whole),
        loss: b.loss,
        grad_output: b.grad_output,
        lse: b.lse,
        argmax: b.argmax,
        accuracy: b.accuracy,
    };
    let logits_of = |_: u64, n: u64| Binding::range(gpu, "scratch", &whole, 0, n * vocab);
    let ce_plan = Plan::with_chunks(gpu, ws, &problem.ce, &bound, &layout.chunks, |first, n, targets| {
        let logits = logits_of(first, n)?;
        let targets = targets.expect("class-index targets are bound for the batch");
        Ok(Chunk { rows: n, input: (!in_place).then(|| logits.clone()), grad: in_place.then_some(logits), targets })
    })?;
    let ce = super::class_index::dispatches(gpu, &problem.ce, &bound, &ce_plan);
    let (products, order) = chunk_products(gpu, problem, b, &layout, logits_of, (true, in_place))?;
    let mut slots: Vec<&[u8]> = ce_plan.params.iter().map(bytemuck::bytes_of).collect();
    slots.extend(products.iter().map(|p| bytemuck::bytes_of(&p.params)));
    ws.set_param_slots(gpu, &slots);
    let mut groups = super::class_index::bind_groups(gpu, ws, &ce_plan)?;
    let first_product_group = groups.len();
    for (i, p) in products.iter().enumerate() {
        groups.push(product_group(gpu, ws, first_product_group + i, p)?);
    }
    let dispatches = interleave(gpu, &ce, &products, &order, first_product_group, b.precision);
    ws.clear_batch(encoder);
    gpu.record(encoder, &groups, &dispatches);
    super::class_index::copy_extras(encoder, ws, &bound, &ce_plan);
    Ok(())
}

/// Every chunk's products in order, and per chunk how many forward and backward ones.
type ChunkProducts = (Vec<Product>, Vec<(usize, usize)>);

/// Each chunk's products: its logits (`forward`) and its gradients (`backward`) from the
/// logits (or their gradient) bound by `logits_of(first, tokens)`.
fn chunk_products(
    gpu: &Gpu, problem: &LinearProblem<'_>, b: &LinearBuffers<'_>, layout: &plan::Layout,
    logits_of: impl Fn(u64, u64) -> Result<Binding>, (forward, backward): (bool, bool),
) -> Result<ChunkProducts> {
    let products = products(gpu, problem, b, &layout.parts)?;
    let (mut all, mut order) = (Vec::new(), Vec::new());
    for &(first, tokens) in &layout.chunks {
        let chunk = chunk_bindings(gpu, problem, b, (first, tokens), logits_of(first, tokens)?)?;
        let f = if forward { products.logits(&chunk) } else { Vec::new() };
        let g = if backward { products.backward(&chunk) } else { Vec::new() };
        order.push((f.len(), g.len()));
        all.extend(f);
        all.extend(g);
    }
    Ok((all, order))
}

/// Records the products alone on the caller's `tokens × vocab` logits (or their gradient):
/// the logits (`forward`) or the gradients `buffers` asks for (`backward`), in chunks of
/// tokens whose logits fit a binding.
fn record_products(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, problem: &LinearProblem<'_>,
    b: &LinearBuffers<'_>, (argument, logits): (&'static str, &wgpu::BufferSlice<'_>), forward: bool,
) -> Result<()> {
    let (tokens, _, vocab) = problem.dims();
    Binding::check(argument, logits, tokens * vocab)?;
    let layout = plan::Layout::new(gpu, problem, gpu.max_binding_size())?;
    let logits_of = |first: u64, n: u64| Binding::range(gpu, argument, logits, first * vocab, n * vocab);
    let (products, _) = chunk_products(gpu, problem, b, &layout, logits_of, (forward, !forward))?;
    let slots: Vec<&[u8]> = products.iter().map(|p| bytemuck::bytes_of(&p.params)).collect();
    ws.set_param_slots(gpu, &slots);
    let groups: Vec<wgpu::BindGroup> =
        products.iter().enumerate().map(|(i, p)| product_group(gpu, ws, i, p)).collect::<Result<_>>()?;
    let dispatches: Vec<Dispatch> = products.iter().enumerate().map(|(i, p)| p.dispatch(gpu, i, b.precision)).collect();
    gpu.record(encoder, &groups, &dispatches);
    Ok(())
}

/// The product builder: each weight part's bindings, the bias and its gradient.
fn products<'p>(
    gpu: &Gpu, problem: &'p LinearProblem<'p>, b: &LinearBuffers<'_>, parts: &[(u64, u64)],
) -> Result<Products<'p>> {
    let (_, hidden, vocab) = problem.dims();
    let row_len = match problem.layout {
        WeightLayout::VocabByHidden => hidden,
        WeightLayout::HiddenByVocab => vocab,
    };
    let bytes = b.precision.bytes();
    let parts = parts
        .iter()
        .map(|&(first, rows)| {
            Ok(PartBindings {
                first,
                rows,
                weight: Binding::range_sized(gpu, "weight", &b.weight, first * row_len, rows * row_len, bytes)?,
                grad_weight: b
                    .grad_weight
                    .map(|s| Binding::range(gpu, "grad_weight", &s, first * row_len, rows * row_len))
                    .transpose()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Products {
        problem,
        parts,
        bias: b.bias.map(|s| Binding::range_sized(gpu, "bias", &s, 0, vocab, bytes)).transpose()?,
        grad_bias: b.grad_bias.map(|s| Binding::range(gpu, "grad_bias", &s, 0, vocab)).transpose()?,
        accumulate: b.accumulate,
    })
}

/// The bindings of the chunk of `tokens` tokens from `first`.
fn chunk_bindings(
    gpu: &Gpu, problem: &LinearProblem<'_>, b: &LinearBuffers<'_>, (first, tokens): (u64, u64), scratch: Binding,
) -> Result<ChunkBindings> {
    let hidden = problem.dims().1;
    let (start, len) = (first * hidden, tokens * hidden);
    Ok(ChunkBindings {
        first,
        tokens,
        hidden: Binding::range_sized(gpu, "hidden", &b.hidden, start, len, b.precision.bytes())?,
        scratch,
        grad_hidden: b.grad_hidden.map(|s| Binding::range(gpu, "grad_hidden", &s, start, len)).transpose()?,
    })
}

/// A product's bind group, its parameters in slot `slot`.
fn product_group(gpu: &Gpu, ws: &mut Workspace, slot: usize, p: &Product) -> Result<wgpu::BindGroup> {
    let placeholder = Binding::placeholder(gpu);
    let or = |b: &Option<Binding>| b.clone().unwrap_or_else(|| placeholder.clone());
    let entries = [
        (0, ws.param_slot(slot, std::mem::size_of::<MatmulParams>() as u64)),
        (1, or(&p.hidden)),
        (2, or(&p.weight)),
        (3, or(&p.bias)),
        (4, or(&p.grad)),
        (5, p.out.clone()),
    ];
    ws.bind_group(gpu, Layout::Linear, &entries)
}

/// The dispatches in order: the cross-entropy's batch kernels that come first, then per
/// chunk its logits, its cross-entropy kernels (bind group `k + 1` for chunk `k`) and its
/// gradients, then the batch kernels that come last. `order` has, per chunk, how many
/// forward and backward products it has.
fn interleave(
    gpu: &Gpu, ce: &[Dispatch], products: &[Product], order: &[(usize, usize)], first_group: usize,
    precision: Precision,
) -> Vec<Dispatch> {
    let first_chunk = ce.iter().position(|d| d.group != 0).unwrap_or(ce.len());
    let mut out: Vec<Dispatch> = ce[..first_chunk].to_vec();
    let mut next = 0;
    let mut push_products = |out: &mut Vec<Dispatch>, count: usize| {
        for p in &products[next..next + count] {
            out.push(p.dispatch(gpu, first_group + next, precision));
            next += 1;
        }
    };
    for (k, &(forward, backward)) in order.iter().enumerate() {
        push_products(&mut out, forward);
        out.extend(ce.iter().filter(|d| d.group == k + 1));
        push_products(&mut out, backward);
    }
    out.extend(ce[first_chunk..].iter().filter(|d| d.group == 0));
    out
}

impl Gpu {
    /// Records fused linear + cross-entropy into the caller's encoder: the cross-entropy of
    /// `hidden·Wᵀ + bias` against `targets`, with every [`CrossEntropyOptions`] option but
    /// `spatial` (which must be 1), and what `buffers` asks for of the loss, `∂L/∂h`,
    /// `∂L/∂W`, `∂L/∂b` and the extras — as the matmul followed by
    /// [`Gpu::encode_cross_entropy`] with the gradient would give, without ever storing the
    /// `tokens × vocab` logits: they are computed for as many tokens at a time as
    /// [`GpuOptions::linear_scratch_bytes`](crate::GpuOptions::linear_scratch_bytes)
    /// allows, turned into their gradient in place and multiplied back. Nothing is
    /// submitted or read back.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, LinearBuffers, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    /// let init = |bytes: &[u8]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage });
    /// // Two tokens of hidden size 2, a vocabulary of 3.
    /// let hidden = init(bytemuck::cast_slice(&[1.0f32, 0.0, 0.0, 1.0]));
    /// let weight = init(bytemuck::cast_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 0.0]));
    /// let targets = init(bytemuck::cast_slice(&[0i32, 1]));
    /// let (loss, grad_weight) = (init(&[0; 4]), init(&[0; 24]));
    /// let buffers = LinearBuffers::new(hidden.slice(..), weight.slice(..), targets.slice(..))
    ///     .loss(loss.slice(..))
    ///     .grad_weight(grad_weight.slice(..));
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_linear_cross_entropy(&mut encoder, &mut ws, &buffers, 2, 2, 3, &CrossEntropyOptions::default()).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_linear_cross_entropy(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, buffers: &LinearBuffers<'_>,
        tokens: usize, hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions,
    ) -> Result<()> {
        let problem = LinearProblem::new(tokens, hidden_size, vocab, opts, buffers.layout)?;
        check_buffers(&problem, buffers)?;
        record(self, encoder, workspace, &problem, buffers)
    }

    /// Records the linear layer alone: `logits = hidden·Wᵀ + bias` (`tokens × vocab` f32)
    /// from `buffers`' hidden states, weight (in its layout and precision) and bias, with
    /// the fused op's kernels — for callers who want the logits themselves, and as the
    /// first step of the unfused op the fused one is checked against. `buffers`' targets
    /// and outputs are not used.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{Gpu, LinearBuffers, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    /// let init = |bytes: &[u8]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage });
    /// let (hidden, weight) = (init(bytemuck::cast_slice(&[1.0f32, 2.0])), init(bytemuck::cast_slice(&[3.0f32, 4.0])));
    /// let (targets, logits) = (init(&[0; 4]), init(&[0; 4]));
    /// let buffers = LinearBuffers::new(hidden.slice(..), weight.slice(..), targets.slice(..));
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_linear(&mut encoder, &mut ws, &buffers, logits.slice(..), 1, 2, 1).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// assert_eq!(gpu.read_buffer::<f32>(logits.slice(..)).unwrap(), vec![11.0]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_linear(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, buffers: &LinearBuffers<'_>,
        logits: wgpu::BufferSlice<'_>, tokens: usize, hidden_size: usize, vocab: usize,
    ) -> Result<()> {
        let opts = CrossEntropyOptions::default();
        let problem = LinearProblem::new(tokens, hidden_size, vocab, &opts, buffers.layout)?;
        check_inputs(&problem, buffers)?;
        record_products(self, encoder, workspace, &problem, buffers, ("logits", &logits), true)
    }

    /// Records the linear layer's gradients from the gradient of its logits `grad_logits`
    /// (`tokens × vocab` f32): the `grad_hidden`, `grad_weight` and `grad_bias` that
    /// `buffers` asks for (added into with [`LinearBuffers::accumulate`]), with the fused
    /// op's kernels and token blocks.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{Gpu, LinearBuffers, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    /// let init = |bytes: &[u8]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage });
    /// let (hidden, weight) = (init(bytemuck::cast_slice(&[1.0f32, 2.0])), init(bytemuck::cast_slice(&[3.0f32, 4.0])));
    /// let (targets, g, dw) = (init(&[0; 4]), init(bytemuck::cast_slice(&[0.5f32])), init(&[0; 8]));
    /// let buffers = LinearBuffers::new(hidden.slice(..), weight.slice(..), targets.slice(..)).grad_weight(dw.slice(..));
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_linear_backward(&mut encoder, &mut ws, &buffers, g.slice(..), 1, 2, 1).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// assert_eq!(gpu.read_buffer::<f32>(dw.slice(..)).unwrap(), vec![0.5, 1.0]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_linear_backward(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, buffers: &LinearBuffers<'_>,
        grad_logits: wgpu::BufferSlice<'_>, tokens: usize, hidden_size: usize, vocab: usize,
    ) -> Result<()> {
        let opts = CrossEntropyOptions::default();
        let problem = LinearProblem::new(tokens, hidden_size, vocab, &opts, buffers.layout)?;
        check_inputs(&problem, buffers)?;
        if !buffers.wants_grads() {
            return Err(Error::InvalidArgument {
                argument: "buffers",
                message: "none of grad_hidden, grad_weight and grad_bias was given".into(),
            });
        }
        record_products(self, encoder, workspace, &problem, buffers, ("grad_logits", &grad_logits), false)
    }
}

/// What a slice-API call of the fused op uploads and reads back.
struct SliceCall<'d> {
    hidden: &'d [f32],
    weight: &'d [f32],
    bias: Option<&'d [f32]>,
    targets: &'d [i32],
    grad_output: Option<&'d [f32]>,
    wanted: Wanted,
}

/// The slice API: checks the host slices, uploads, records through the encode stages and
/// reads back the loss, the gradients and the extras asked for, and the batch status (an
/// out-of-range target is an `Err`).
async fn linear_slice(
    gpu: &Gpu, call: SliceCall<'_>, (tokens, hidden_size, vocab): (usize, usize, usize), opts: &CrossEntropyOptions,
) -> Result<LinearCrossEntropyOutputs> {
    let problem = LinearProblem::new(tokens, hidden_size, vocab, opts, WeightLayout::VocabByHidden)?;
    let len = |s: Option<&[f32]>| s.map(<[f32]>::len);
    problem.shape.check_slices(
        call.hidden.len(),
        call.weight.len(),
        len(call.bias),
        call.targets.len(),
        len(call.grad_output),
        opts,
    )?;
    let grads = call.wanted.grad;
    let mut uploads: Vec<&[u8]> =
        vec![bytemuck::cast_slice(call.hidden), bytemuck::cast_slice(call.weight), bytemuck::cast_slice(call.targets)];
    uploads.extend(call.bias.map(bytemuck::cast_slice));
    uploads.extend(call.grad_output.map(bytemuck::cast_slice));
    let w = call.wanted;
    let lens = [
        (true, problem.ce.loss_len() as usize),
        (grads, tokens * hidden_size),
        (grads, vocab * hidden_size),
        (grads && call.bias.is_some(), vocab),
        (w.lse, tokens),
        (w.argmax, tokens),
        (w.accuracy, 1),
    ];
    let output_lens: Vec<usize> = lens.iter().filter(|(on, _)| *on).map(|&(_, n)| n).collect();
    let outputs = gpu
        .run_slice(&uploads, &output_lens, BATCH_STATE_BYTES, |encoder, ws, inputs, outputs| {
            let mut b = LinearBuffers::new(inputs[0], inputs[1], inputs[2]);
            let mut inputs = inputs[3..].iter().copied();
            b.bias = call.bias.and_then(|_| inputs.next());
            b.grad_output = call.grad_output.and_then(|_| inputs.next());
            let mut outputs = outputs.iter().copied();
            let mut next = |(on, _): (bool, usize)| if on { outputs.next() } else { None };
            (b.loss, b.grad_hidden, b.grad_weight, b.grad_bias) =
                (next(lens[0]), next(lens[1]), next(lens[2]), next(lens[3]));
            (b.lse, b.argmax, b.accuracy) = (next(lens[4]), next(lens[5]), next(lens[6]));
            record(gpu, encoder, ws, &problem, &b)
        })
        .await?;
    let mut outputs = outputs.into_iter();
    let mut take = |(on, _): (bool, usize)| if on { outputs.next().unwrap_or_default() } else { Vec::new() };
    let loss = take(lens[0]);
    let (grad_hidden, grad_weight) = (take(lens[1]), take(lens[2]));
    let grad_bias = lens[3].0.then(|| take(lens[3]));
    let (lse, argmax, accuracy) = (take(lens[4]), take(lens[5]), take(lens[6]));
    status_to_result(&outputs.next().unwrap_or_default(), vocab)?;
    Ok(LinearCrossEntropyOutputs {
        grads: LinearCrossEntropyGrads { loss, grad_hidden, grad_weight, grad_bias },
        lse,
        argmax: argmax.iter().map(|a| a.to_bits() as i32).collect(),
        accuracy: accuracy.first().copied(),
    })
}

slice_api! {
    /// The cross-entropy of `hidden·weightᵀ + bias` against class-index `targets` (`tokens`
    /// values for `Reduction::None`, else one), without storing the logits: `hidden` is
    /// `tokens × hidden_size`, `weight` is `vocab × hidden_size` (as
    /// `torch.nn.Linear.weight`; an `hidden_size × vocab` weight through
    /// [`Gpu::encode_linear_cross_entropy`]), `bias` has `vocab` values. Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// // One token h = (1, 0), W = [(0, 0), (0, 0)]: logits (0, 0).
    /// let loss = gpu.linear_cross_entropy(&[1.0, 0.0], &[0.0; 4], None, &[1], 1, 2, 2, &CrossEntropyOptions::default()).unwrap();
    /// assert!((loss[0] - 2f32.ln()).abs() < 1e-6);
    /// ```
    pub fn linear_cross_entropy;
    /// The async form of [`Gpu::linear_cross_entropy`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let loss = pollster::block_on(gpu.linear_cross_entropy_async(&[1.0], &[0.0, 0.0], None, &[0], 1, 1, 2, &opts)).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn linear_cross_entropy_async(
        &self, hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized),
        tokens: usize, hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        let out = self.linear_cross_entropy_with_extras_async(hidden, weight, bias, targets, tokens, hidden_size, vocab, opts, Extras::default(), None);
        Ok(out.await?.grads.loss)
    }

    /// [`Gpu::linear_cross_entropy`] and its gradients `∂L/∂h`, `∂L/∂W` and `∂L/∂b` (`Some`
    /// exactly when `bias` is) for the upstream `grad_output` (`tokens` values for
    /// `Reduction::None`, else one). Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, Reduction};
    /// let gpu = Gpu::new().unwrap();
    /// let mut opts = CrossEntropyOptions::default();
    /// opts.reduction = Reduction::Sum;
    /// let g = gpu.linear_cross_entropy_with_grad(&[1.0], &[0.0, 0.0], Some(&[0.0, 0.0]), &[1], 1, 1, 2, &opts, &[1.0]).unwrap();
    /// assert_eq!(g.grad_weight, vec![0.5, -0.5]);
    /// assert_eq!(g.grad_bias, Some(vec![0.5, -0.5]));
    /// ```
    pub fn linear_cross_entropy_with_grad;
    /// The async form of [`Gpu::linear_cross_entropy_with_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let g = pollster::block_on(gpu.linear_cross_entropy_with_grad_async(&[1.0], &[0.0, 0.0], None, &[0], 1, 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn linear_cross_entropy_with_grad_async(
        &self, hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized),
        tokens: usize, hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions, grad_output: &[f32],
    ) -> Result<LinearCrossEntropyGrads> {
        let out = self.linear_cross_entropy_with_extras_async(hidden, weight, bias, targets, tokens, hidden_size, vocab, opts, Extras::default(), Some(grad_output));
        Ok(out.await?.grads)
    }

    /// The loss, the gradients when `grad_output` is given, and the extra outputs asked
    /// for (per-token log-sum-exp and argmax of the logits, batch accuracy), as
    /// [`Gpu::cross_entropy_with_extras`] of the logits. Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Extras, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let out = gpu.linear_cross_entropy_with_extras(&[2.0], &[1.0, 0.0], None, &[1], 1, 1, 2,
    ///     &CrossEntropyOptions::default(), Extras::all(), None).unwrap();
    /// assert_eq!((out.argmax, out.accuracy), (vec![0], Some(0.0)));
    /// ```
    pub fn linear_cross_entropy_with_extras;
    /// The async form of [`Gpu::linear_cross_entropy_with_extras`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// use wgpu_loss::{CrossEntropyOptions, Extras};
    /// let out = pollster::block_on(gpu.linear_cross_entropy_with_extras_async(&[1.0], &[0.0, 0.0], None, &[0], 1, 1, 2,
    ///     &CrossEntropyOptions::default(), Extras::all(), None)).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn linear_cross_entropy_with_extras_async(
        &self, hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized),
        tokens: usize, hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions, extras: Extras,
        grad_output: Option<&[f32]>,
    ) -> Result<LinearCrossEntropyOutputs> {
        let targets = &*targets.to_i32(vocab)?;
        let wanted = Wanted { loss: true, grad: grad_output.is_some(), lse: extras.lse, argmax: extras.argmax, accuracy: extras.accuracy };
        let call = SliceCall { hidden, weight, bias, targets, grad_output, wanted };
        linear_slice(self, call, (tokens, hidden_size, vocab), opts).await
    }
}
