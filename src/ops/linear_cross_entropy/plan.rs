//! How a checked fused op is laid out: token chunks whose logits fit the scratch budget,
//! parts of the weight that fit a binding, and the products of each chunk with their
//! bindings and parameters.

use super::LinearProblem;
use crate::Precision;
use crate::error::{Error, Result};
use crate::gpu::{Binding, Dispatch, Gpu, Kernel, LINEAR_WG, MM_ACCUMULATE, MM_BIAS, MatmulParams, TILE, TK};
use crate::options::WeightLayout;

/// One product dispatch: its kernel and parameters, and what it binds.
#[derive(Debug, Clone)]
pub(super) struct Product {
    pub kernel: Kernel,
    pub params: MatmulParams,
    pub hidden: Option<Binding>,
    pub weight: Option<Binding>,
    pub bias: Option<Binding>,
    /// The chunk's logit gradient G (the scratch), read.
    pub grad: Option<Binding>,
    pub out: Binding,
}

impl Product {
    /// The product's dispatch with bind group `group` on `precision`'s operands: ∂b one
    /// workgroup per LINEAR_WG classes; the others one per TILE × TILE tile of C, in this
    /// device's form, reading quads as vec4 where they can.
    pub fn dispatch(&self, gpu: &Gpu, group: usize, precision: Precision) -> Dispatch {
        let p = &self.params;
        if self.kernel == Kernel::LinearGradBias {
            return Dispatch::new(self.kernel, u64::from(p.n).div_ceil(u64::from(LINEAR_WG)), group);
        }
        let kernel =
            if precision == Precision::F32 && self.reads_whole_quads() { self.kernel.quads() } else { self.kernel };
        let tiles = u64::from(p.m.div_ceil(TILE)) * u64::from(p.n.div_ceil(TILE));
        Dispatch::unrolled((kernel, gpu.linear_slots()), tiles, group).on(precision)
    }

    /// Whether both operands start at a multiple of 4 elements and are contiguous along
    /// one dimension with a stride of whole quads along the other: then every quad read is
    /// a 16-byte-aligned vec4 within its binding (whose rows are whole quads).
    fn reads_whole_quads(&self) -> bool {
        let p = &self.params;
        let quads = |s_r: u32, s_k: u32| (s_k == 1 && s_r.is_multiple_of(4)) || (s_r == 1 && s_k.is_multiple_of(4));
        p.a_off.is_multiple_of(4) && p.b_off.is_multiple_of(4) && quads(p.a_sm, p.a_sk) && quads(p.b_sn, p.b_sk)
    }
}

/// The token chunks and weight parts of an op.
#[derive(Debug)]
pub(super) struct Layout {
    /// `(first token, tokens)`: a multiple of TK tokens each but the last, so ∂W and ∂b
    /// are summed in the same token blocks whatever the budget.
    pub chunks: Vec<(u64, u64)>,
    /// `(first row, rows)` of the stored weight (vocabulary rows of a V × H weight, hidden
    /// rows of an H × V one) whose weight and gradient each fit one binding.
    pub parts: Vec<(u64, u64)>,
    /// Tokens in the largest chunk (what the scratch holds).
    pub chunk_tokens: u64,
}

impl Layout {
    /// Chunks of a tenth of the tokens (so the scratch, with the workspace's few words per
    /// token, stays under a sixteenth of the whole logits and their gradient) in whole
    /// TILE-token tiles of the products, within `budget` bytes of logits and a binding (a
    /// multiple of TK tokens where that allows less than a tile).
    pub fn new(gpu: &Gpu, problem: &LinearProblem<'_>, budget: u64) -> Result<Self> {
        let (tokens, hidden, vocab) = problem.dims();
        let block = u64::from(TK);
        // The scratch is one buffer: within the device's largest buffer too.
        let binding = gpu.max_binding_size().min(gpu.device().limits().max_buffer_size);
        let fit = (budget.min(binding) / (4 * vocab)).min(binding / (4 * hidden)) / block * block;
        let tile = u64::from(TILE);
        let tenth = (tokens / 10 / tile * tile).max(tile);
        let chunk_tokens = fit.min(tenth);
        if chunk_tokens == 0 {
            return Err(Error::TooLarge {
                argument: "vocab",
                bytes: 4 * u64::from(TK) * vocab.max(hidden),
                limit: budget.min(binding),
            });
        }
        let chunks = (0..tokens.div_ceil(chunk_tokens))
            .map(|c| (c * chunk_tokens, chunk_tokens.min(tokens - c * chunk_tokens)))
            .collect();
        let (rows, row_len) = match problem.layout {
            WeightLayout::VocabByHidden => (vocab, hidden),
            WeightLayout::HiddenByVocab => (hidden, vocab),
        };
        let parts = gpu.row_chunks(rows, row_len, 1)?;
        Ok(Self { chunks, parts, chunk_tokens: chunk_tokens.min(tokens) })
    }
}

/// The bindings of one chunk's products.
pub(super) struct ChunkBindings {
    pub first: u64,
    pub tokens: u64,
    pub hidden: Binding,
    pub scratch: Binding,
    pub grad_hidden: Option<Binding>,
}

/// The bindings of one part of the weight.
pub(super) struct PartBindings {
    pub first: u64,
    pub rows: u64,
    pub weight: Binding,
    pub grad_weight: Option<Binding>,
}

/// Builds the products of one op from its bindings.
pub(super) struct Products<'p> {
    pub problem: &'p LinearProblem<'p>,
    pub parts: Vec<PartBindings>,
    pub bias: Option<Binding>,
    pub grad_bias: Option<Binding>,
    pub accumulate: bool,
}

impl Products<'_> {
    fn product(&self, kernel: Kernel, params: MatmulParams, out: &Binding) -> Product {
        Product { kernel, params, hidden: None, weight: None, bias: None, grad: None, out: out.clone() }
    }

    /// The chunk's logits `h·Wᵀ + b` into the scratch, one product per weight part (V × H:
    /// each part's columns of the logits; H × V: each part's share of the sum, added).
    pub fn logits(&self, c: &ChunkBindings) -> Vec<Product> {
        let (_, hidden, vocab) = self.problem.dims();
        let (h, v, n) = (hidden as u32, vocab as u32, c.tokens as u32);
        let bias = self.bias.as_ref().map_or(0, |b| b.element_offset);
        let with_bias = if self.bias.is_some() { MM_BIAS } else { 0 };
        let x = c.hidden.element_offset;
        self.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let (first, rows, w) = (part.first as u32, part.rows as u32, part.weight.element_offset);
                let (kernel, params) = match self.problem.layout {
                    WeightLayout::VocabByHidden => (
                        Kernel::LinearLogits,
                        mm((n, rows, h), with_bias, (x, h, 1), (w, 1, h), (first, v), bias + first),
                    ),
                    WeightLayout::HiddenByVocab => {
                        let flags = if i == 0 { with_bias } else { MM_ACCUMULATE };
                        (Kernel::LinearLogitsT, mm((n, v, rows), flags, (x + first, h, 1), (w, v, 1), (0, v), bias))
                    }
                };
                Product {
                    hidden: Some(c.hidden.clone()),
                    weight: Some(part.weight.clone()),
                    bias: self.bias.clone(),
                    ..self.product(kernel, params, &c.scratch)
                }
            })
            .collect()
    }

    /// The chunk's gradients from G in the scratch: `∂h = G·W`, `∂W += Gᵀ·h` per part and
    /// `∂b += Σ_t G`. The first chunk overwrites ∂W and ∂b unless the caller accumulates.
    pub fn backward(&self, c: &ChunkBindings) -> Vec<Product> {
        let accumulate = if self.accumulate || c.first > 0 { MM_ACCUMULATE } else { 0 };
        let with_grad = |p: Product| Product { grad: Some(c.scratch.clone()), ..p };
        let mut products = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if let Some(dh) = &c.grad_hidden {
                products.push(with_grad(self.grad_hidden(c, part, i, dh)));
            }
            if let Some(dw) = &part.grad_weight {
                products.push(with_grad(self.grad_weight(c, part, accumulate, dw)));
            }
        }
        if let Some(db) = &self.grad_bias {
            let (v, n) = (self.problem.dims().2 as u32, c.tokens as u32);
            let params = mm((n, v, 0), accumulate, (0, v, 0), (0, 0, 0), (db.element_offset, 0), 0);
            products.push(with_grad(self.product(Kernel::LinearGradBias, params, db)));
        }
        products
    }

    /// `∂h = G·W` for part `i`: V × H parts each add their vocabulary's share (the first
    /// overwrites), H × V parts write their columns of ∂h.
    fn grad_hidden(&self, c: &ChunkBindings, part: &PartBindings, i: usize, dh: &Binding) -> Product {
        let (_, hidden, vocab) = self.problem.dims();
        let (h, v, n) = (hidden as u32, vocab as u32, c.tokens as u32);
        let (first, rows, w) = (part.first as u32, part.rows as u32, part.weight.element_offset);
        let (kernel, params) = match self.problem.layout {
            WeightLayout::VocabByHidden => {
                let flags = if i == 0 { 0 } else { MM_ACCUMULATE };
                (Kernel::LinearGradHidden, mm((n, h, rows), flags, (first, v, 1), (w, h, 1), (dh.element_offset, h), 0))
            }
            WeightLayout::HiddenByVocab => (
                Kernel::LinearGradHiddenT,
                mm((n, rows, v), 0, (0, v, 1), (w, 1, v), (dh.element_offset + first, h), 0),
            ),
        };
        Product { weight: Some(part.weight.clone()), ..self.product(kernel, params, dh) }
    }

    /// `∂W (+)= Gᵀ·h` for a part's rows of the weight, over the chunk's tokens.
    fn grad_weight(&self, c: &ChunkBindings, part: &PartBindings, accumulate: u32, dw: &Binding) -> Product {
        let (_, hidden, vocab) = self.problem.dims();
        let (h, v, n) = (hidden as u32, vocab as u32, c.tokens as u32);
        let (first, rows, x, out) = (part.first as u32, part.rows as u32, c.hidden.element_offset, dw.element_offset);
        let (kernel, params) = match self.problem.layout {
            WeightLayout::VocabByHidden => {
                (Kernel::LinearGradWeight, mm((rows, h, n), accumulate, (first, 1, v), (x, h, 1), (out, h), 0))
            }
            WeightLayout::HiddenByVocab => {
                (Kernel::LinearGradWeightT, mm((rows, v, n), accumulate, (x + first, 1, h), (0, v, 1), (out, v), 0))
            }
        };
        Product { hidden: Some(c.hidden.clone()), ..self.product(kernel, params, dw) }
    }
}

/// A product's parameters: `(m, n, k)`, flags, `A[m, k]` at `(offset, m stride, k stride)`,
/// `B[k, n]` at `(offset, k stride, n stride)`, `C` at `(offset, m stride)`, the bias offset.
fn mm(
    (m, n, k): (u32, u32, u32), flags: u32, (a_off, a_sm, a_sk): (u32, u32, u32), (b_off, b_sk, b_sn): (u32, u32, u32),
    (c_off, c_sm): (u32, u32), bias_off: u32,
) -> MatmulParams {
    MatmulParams { m, n, k, flags, a_off, a_sm, a_sk, b_off, b_sk, b_sn, c_off, c_sm, bias_off }
}
