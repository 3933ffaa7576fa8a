//! How a checked fused op is laid out: token chunks whose logits fit the scratch budget,
//! parts of the weight that fit a binding, and the products of each chunk with their
//! bindings and parameters.

use super::LinearProblem;
use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu, Kernel, LINEAR_WG, MM_ACCUMULATE, MM_BIAS, MatmulParams, TK, TM, TN};
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
    /// Workgroups: one per TM × TN tile of C, or one per LINEAR_WG classes for ∂b.
    pub fn workgroups(&self) -> u64 {
        let p = &self.params;
        match self.kernel {
            Kernel::LinearGradBias => u64::from(p.n).div_ceil(u64::from(LINEAR_WG)),
            _ => u64::from(p.m.div_ceil(TM)) * u64::from(p.n.div_ceil(TN)),
        }
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
    /// token, stays under a sixteenth of the whole logits and their gradient), a multiple of
    /// TK, within `budget` bytes of logits and a binding.
    pub fn new(gpu: &Gpu, problem: &LinearProblem<'_>, budget: u64) -> Result<Self> {
        let (tokens, hidden, vocab) = problem.dims();
        let block = u64::from(TK);
        // The scratch is one buffer: within the device's largest buffer too.
        let binding = gpu.max_binding_size().min(gpu.device().limits().max_buffer_size);
        let fit = (budget.min(binding) / (4 * vocab)).min(binding / (4 * hidden)) / block * block;
        let tenth = (tokens / 10 / block * block).max(block);
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
        let (h, v) = (hidden as u32, vocab as u32);
        let bias_off = self.bias.as_ref().map_or(0, |b| b.element_offset);
        self.parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let (first, rows) = (part.first as u32, part.rows as u32);
                let base = MatmulParams {
                    m: c.tokens as u32,
                    a_off: c.hidden.element_offset,
                    a_sm: h,
                    a_sk: 1,
                    b_off: part.weight.element_offset,
                    c_sm: v,
                    flags: if self.bias.is_some() { MM_BIAS } else { 0 },
                    bias_off,
                    ..Default::default()
                };
                let params = match self.problem.layout {
                    WeightLayout::VocabByHidden => MatmulParams {
                        n: rows,
                        k: h,
                        b_sk: 1,
                        b_sn: h,
                        c_off: first,
                        bias_off: bias_off + first,
                        ..base
                    },
                    WeightLayout::HiddenByVocab => MatmulParams {
                        n: v,
                        k: rows,
                        a_off: base.a_off + first,
                        b_sk: v,
                        b_sn: 1,
                        flags: if i == 0 { base.flags } else { MM_ACCUMULATE },
                        ..base
                    },
                };
                Product {
                    hidden: Some(c.hidden.clone()),
                    weight: Some(part.weight.clone()),
                    bias: self.bias.clone(),
                    ..self.product(Kernel::LinearLogits, params, &c.scratch)
                }
            })
            .collect()
    }

    /// The chunk's gradients from G in the scratch: `∂h = G·W` (per part: V × H parts add
    /// into it, H × V parts write their columns), `∂W += Gᵀ·h` per part and `∂b += Σ_t G`.
    /// The first chunk overwrites ∂W and ∂b unless the caller accumulates.
    pub fn backward(&self, c: &ChunkBindings) -> Vec<Product> {
        let (_, hidden, vocab) = self.problem.dims();
        let (h, v, n) = (hidden as u32, vocab as u32, c.tokens as u32);
        let accumulate = if self.accumulate || c.first > 0 { MM_ACCUMULATE } else { 0 };
        let mut products = Vec::new();
        let with_grad = |p: Product| Product { grad: Some(c.scratch.clone()), ..p };
        for (i, part) in self.parts.iter().enumerate() {
            let (first, rows) = (part.first as u32, part.rows as u32);
            let vocab_rows = self.problem.layout == WeightLayout::VocabByHidden;
            if let Some(dh) = &c.grad_hidden {
                let params = if vocab_rows {
                    let flags = if i == 0 { 0 } else { MM_ACCUMULATE };
                    let (a_off, b_off, c_off) = (first, part.weight.element_offset, dh.element_offset);
                    MatmulParams {
                        m: n,
                        n: h,
                        k: rows,
                        flags,
                        a_off,
                        a_sm: v,
                        a_sk: 1,
                        b_off,
                        b_sk: h,
                        b_sn: 1,
                        c_off,
                        c_sm: h,
                        bias_off: 0,
                    }
                } else {
                    let (b_off, c_off) = (part.weight.element_offset, dh.element_offset + first);
                    MatmulParams {
                        m: n,
                        n: rows,
                        k: v,
                        flags: 0,
                        a_off: 0,
                        a_sm: v,
                        a_sk: 1,
                        b_off,
                        b_sk: 1,
                        b_sn: v,
                        c_off,
                        c_sm: h,
                        bias_off: 0,
                    }
                };
                let p =
                    Product { weight: Some(part.weight.clone()), ..self.product(Kernel::LinearGradHidden, params, dh) };
                products.push(with_grad(p));
            }
            if let Some(dw) = &part.grad_weight {
                let (hidden_off, c_off) = (c.hidden.element_offset, dw.element_offset);
                let (kernel, params) = if vocab_rows {
                    let params = MatmulParams {
                        m: rows,
                        n: h,
                        k: n,
                        flags: accumulate,
                        a_off: first,
                        a_sm: 1,
                        a_sk: v,
                        b_off: hidden_off,
                        b_sk: h,
                        b_sn: 1,
                        c_off,
                        c_sm: h,
                        bias_off: 0,
                    };
                    (Kernel::LinearGradWeight, params)
                } else {
                    let params = MatmulParams {
                        m: rows,
                        n: v,
                        k: n,
                        flags: accumulate,
                        a_off: hidden_off + first,
                        a_sm: 1,
                        a_sk: h,
                        b_off: 0,
                        b_sk: v,
                        b_sn: 1,
                        c_off,
                        c_sm: v,
                        bias_off: 0,
                    };
                    (Kernel::LinearGradWeightT, params)
                };
                let p = Product { hidden: Some(c.hidden.clone()), ..self.product(kernel, params, dw) };
                products.push(with_grad(p));
            }
        }
        if let Some(db) = &self.grad_bias {
            let params =
                MatmulParams { m: n, n: v, flags: accumulate, a_sm: v, c_off: db.element_offset, ..Default::default() };
            products.push(with_grad(self.product(Kernel::LinearGradBias, params, db)));
        }
        products
    }
}
