//! Fused linear + cross-entropy against its f64 CPU twin (the logits `h·Wᵀ + b` computed
//! whole there, never stored on the GPU): every vocabulary size on every path, each of
//! tokens, hidden size and vocabulary over 1, 3, 7, 33, 257, 1000 and 4097, every option,
//! both weight layouts in f32, f16 and bf16, a masked vocabulary; bit for bit the same as
//! the unfused op (this crate's matmul, cross-entropy, then the backward products) and
//! across scratch budgets; gradient accumulation; odd offsets; bad input.

use wgpu_loss::{
    CrossEntropyOptions, EmptyPolicy, Error, Extras, Gpu, LinearBuffers, LinearCrossEntropyOutputs, Precision,
    Reduction, WeightLayout, Workspace, cpu,
};

use crate::harness::tol::{self, LinearTol};
use crate::harness::{Arena, Expect, Path, Rng, download, gpu, gpu_with, trials, upload};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(
        per_path: [matches_cpu_across_vocab_sizes, matches_cpu_with_every_option],
        once: [
            matches_cpu_on_every_shape,
            tile_boundaries,
            layouts_and_precisions,
            masked_vocabulary,
            equals_the_unfused_op,
            bit_identical_across_scratch_budgets,
            accumulates_into_the_weight_gradients,
            encodes_at_odd_offsets,
            bad_input_is_an_err,
            catches_a_tenth_of_a_percent,
        ],
    )
}

/// The near-cancellations [`catches_a_tenth_of_a_percent`] exempts: elements whose terms
/// add up to more than this many times their size.
const CANCEL: f64 = 6.0;

/// The sizes each dimension takes while the other two stay small.
const SIZES: [usize; 7] = [1, 3, 7, 33, 257, 1000, 4097];

/// A case's hidden states, weight, bias and targets.
type Inputs<'a> = (&'a [f32], &'a [f32], Option<&'a [f32]>, &'a [i32]);

/// One problem: data, options and upstream gradient.
pub struct Case {
    pub dims: (usize, usize, usize),
    pub h: Vec<f32>,
    /// `vocab × hidden`.
    pub w: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub targets: Vec<i32>,
    pub opts: CrossEntropyOptions,
    pub g: Vec<f32>,
}

impl Case {
    /// Hidden states in ±1, a weight in ±3/√H (logits of a few units, as a trained layer's),
    /// a bias in ±1, targets over the vocabulary with every fifth token `ignore_index`
    /// when the options ignore one.
    pub fn new(seed: u64, (n, hd, v): (usize, usize, usize), bias: bool, opts: CrossEntropyOptions) -> Self {
        let mut rng = Rng::new(seed);
        let scale = 3.0 / (hd as f32).sqrt();
        let h = rng.logits(n * hd, 1.0);
        let w = rng.logits(v * hd, scale);
        let bias = bias.then(|| rng.logits(v, 1.0));
        let mut targets = rng.targets(n, v);
        if opts.ignore_index != -100 {
            targets.iter_mut().step_by(5).for_each(|t| *t = opts.ignore_index);
        }
        let g = crate::harness::grad_output(&mut rng, n, &opts);
        Self { dims: (n, hd, v), h, w, bias, targets, opts, g }
    }

    fn what(&self, path: &str) -> String {
        let (n, hd, v) = self.dims;
        format!("{n}x{hd}x{v} {:?} {path}", self.opts.reduction)
    }

    /// The twin's outputs (with every extra and the gradients) and their tolerances.
    pub fn expect(&self) -> (LinearCrossEntropyOutputs, LinearTol) {
        let ((n, hd, v), (h, w, b, t)) = (self.dims, self.inputs());
        let want =
            cpu::linear_cross_entropy_with_extras(h, w, b, t, n, hd, v, &self.opts, Extras::all(), Some(&self.g))
                .unwrap();
        (want, tol::linear_cross_entropy(h, w, b, t, self.dims, &self.opts, &self.g))
    }

    /// The slice API's outputs on `gpu`.
    pub fn run(&self, gpu: &Gpu) -> wgpu_loss::Result<LinearCrossEntropyOutputs> {
        let ((n, hd, v), (h, w, b, t)) = (self.dims, self.inputs());
        gpu.linear_cross_entropy_with_extras(h, w, b, t, n, hd, v, &self.opts, Extras::all(), Some(&self.g))
    }

    /// Hidden states, weight, bias and targets.
    fn inputs(&self) -> Inputs<'_> {
        (&self.h, &self.w, self.bias.as_deref(), &self.targets)
    }

    /// The logit of `(t, c)` in f64.
    fn logit(&self, t: usize, c: usize) -> f64 {
        let hd = self.dims.1;
        let dot: f64 = (0..hd).map(|k| f64::from(self.h[t * hd + k]) * f64::from(self.w[c * hd + k])).sum();
        dot + self.bias.as_ref().map_or(0.0, |b| f64::from(b[c]))
    }

    /// Checks `got` against the twin: every output within its tolerance; an argmax that
    /// differs only where the two logits are within their error of each other (and then
    /// the accuracy from the GPU's argmax).
    pub fn check(
        &self, what: &str, got: &LinearCrossEntropyOutputs, (want, tol): &(LinearCrossEntropyOutputs, LinearTol),
    ) {
        let (w, g) = (&want.grads, &got.grads);
        Expect::new(w.loss.clone(), tol.loss.clone()).check(&format!("linear_ce loss {what}"), &g.loss);
        Expect::new(w.grad_hidden.clone(), tol.grad_hidden.clone())
            .check(&format!("linear_ce grad_hidden {what}"), &g.grad_hidden);
        Expect::new(w.grad_weight.clone(), tol.grad_weight.clone())
            .check(&format!("linear_ce grad_weight {what}"), &g.grad_weight);
        match (&w.grad_bias, &g.grad_bias) {
            (Some(want_b), Some(got_b)) => {
                Expect::new(want_b.clone(), tol.grad_bias.clone()).check(&format!("linear_ce grad_bias {what}"), got_b)
            }
            (want_b, got_b) => assert_eq!(want_b.is_some(), got_b.is_some(), "grad_bias {what}"),
        }
        Expect::new(want.lse.clone(), tol.lse.clone()).check(&format!("linear_ce lse {what}"), &got.lse);
        let v = self.dims.2;
        let mut argmax_agrees = true;
        for (t, (&a, &b)) in got.argmax.iter().zip(&want.argmax).enumerate() {
            if a != b {
                argmax_agrees = false;
                assert!((0..v as i32).contains(&a), "argmax {what}: token {t}: {a} out of range");
                let gap = self.logit(t, b as usize) - self.logit(t, a as usize);
                assert!(gap <= 2.0 * tol.lse[t], "argmax {what}: token {t}: got {a}, want {b}, logits {gap:e} apart");
            }
        }
        let accuracy = if argmax_agrees {
            want.accuracy
        } else {
            let counted: Vec<usize> =
                (0..got.argmax.len()).filter(|&t| self.targets[t] != self.opts.ignore_index).collect();
            let right = counted.iter().filter(|&&t| got.argmax[t] == self.targets[t]).count();
            Some(if counted.is_empty() { 0.0 } else { right as f32 / counted.len() as f32 })
        };
        let tol = accuracy.map_or(0.0, |a| 3e-7 * f64::from(a).abs());
        Expect::new(accuracy.into_iter().collect(), vec![tol])
            .check(&format!("linear_ce accuracy {what}"), &got.accuracy.into_iter().collect::<Vec<_>>());
    }
}

/// Whether the fused op can run `dims` on `gpu`: a block of 16 tokens' logits and hidden
/// states, and one row of the weight, each fit a binding (the chunked paths bind 8 KiB).
fn fits(path: &Path, (_, hd, v): (usize, usize, usize)) -> bool {
    path.fits(16 * v.max(hd))
}

/// Every vocabulary size, with 7 tokens of hidden size 33, on every path: the vocabulary is
/// what the cross-entropy kernels choose by; the chunked paths split the weight into parts.
fn matches_cpu_across_vocab_sizes(path: &'static Path) {
    for (i, &v) in SIZES.iter().enumerate() {
        let dims = (7, 33, v);
        if !fits(path, dims) {
            continue;
        }
        let case = Case::new(900 + i as u64, dims, true, CrossEntropyOptions::default());
        let expect = case.expect();
        case.check(&case.what(path.name), &case.run(&path.gpu).unwrap(), &expect);
    }
}

/// Every option (the pairwise sets, z-loss, soft-capping, `EmptyPolicy::Zero`) on 37
/// tokens, hidden size 20 and a vocabulary of 50, with and without a bias, on every path.
fn matches_cpu_with_every_option(path: &'static Path) {
    let dims = (37, 20, 50);
    let mut sets = crate::harness::option_sets(dims.2, 3);
    let mut extra = CrossEntropyOptions::default();
    extra.z_loss_scale = 1e-3;
    extra.logit_softcap = 2.5;
    extra.empty = EmptyPolicy::Zero;
    extra.reduction = Reduction::Mean;
    sets.push(extra);
    for (i, opts) in sets.into_iter().enumerate() {
        let case = Case::new(1000 + i as u64, dims, i % 2 == 0, opts);
        if !fits(path, dims) {
            continue;
        }
        let expect = case.expect();
        case.check(&format!("options {i} {}", case.what(path.name)), &case.run(&path.gpu).unwrap(), &expect);
    }
}

/// Each of tokens, hidden size and vocabulary over [`SIZES`] while the other two are at
/// most 64, and mixed shapes, on the default path.
fn matches_cpu_on_every_shape() {
    let mut shapes = Vec::new();
    for &s in &SIZES {
        shapes.extend([(s, 64, 33), (17, s, 64), (64, 9, s)]);
    }
    shapes.extend([(257, 257, 1000), (1000, 64, 257), (33, 1000, 257), (300, 48, 4097)]);
    for (i, &dims) in shapes.iter().enumerate() {
        let case = Case::new(2000 + i as u64, dims, i % 2 == 1, CrossEntropyOptions::default());
        let expect = case.expect();
        case.check(&case.what("default"), &case.run(gpu()).unwrap(), &expect);
    }
}

/// Each dimension one below, at and one above a tile of the products (64) or a k block (16,
/// and its quads of 4), in both forms of the products, with a bias: tokens are ∂W's k,
/// the hidden size the logits' k and the vocabulary ∂h's.
fn tile_boundaries() {
    let shapes = [(63, 16, 65), (64, 17, 64), (65, 15, 63), (17, 64, 128), (15, 4, 1), (16, 1, 129)];
    for gpu in both_forms() {
        for (i, &dims) in shapes.iter().enumerate() {
            let case = Case::new(5000 + i as u64, dims, true, CrossEntropyOptions::default());
            let form = if gpu.stages_linear_tiles() { "staged" } else { "direct" };
            case.check(&format!("tiles {form} {}", case.what("default")), &case.run(gpu).unwrap(), &case.expect());
        }
    }
}

/// The weight `vocab × hidden` as given, or transposed for [`WeightLayout::HiddenByVocab`].
fn laid_out<T: Copy>(w: &[T], (_, hd, v): (usize, usize, usize), layout: WeightLayout) -> Vec<T> {
    match layout {
        WeightLayout::VocabByHidden => w.to_vec(),
        WeightLayout::HiddenByVocab => (0..hd * v).map(|i| w[(i % v) * hd + i / v]).collect(),
    }
}

/// `x` rounded to `precision` (exactly representable there), and its bytes there.
fn rounded(x: &[f32], precision: Precision) -> (Vec<f32>, Vec<u8>) {
    match precision {
        Precision::F32 => (x.to_vec(), bytemuck::cast_slice(x).to_vec()),
        Precision::F16 => {
            let h: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
            (h.iter().map(|v| v.to_f32()).collect(), bytemuck::cast_slice(&h).to_vec())
        }
        Precision::Bf16 => {
            let h: Vec<half::bf16> = x.iter().map(|&v| half::bf16::from_f32(v)).collect();
            (h.iter().map(|v| v.to_f32()).collect(), bytemuck::cast_slice(&h).to_vec())
        }
    }
}

/// The encode API's loss and gradients (and `grad_bias` when there is a bias), on the
/// case's data in `layout` and `precision`.
fn encode_run(gpu: &Gpu, case: &Case, layout: WeightLayout, precision: Precision) -> Vec<Vec<f32>> {
    let (n, hd, v) = case.dims;
    let (_, h) = rounded(&case.h, precision);
    let (_, w) = rounded(&laid_out(&case.w, case.dims, layout), precision);
    let bias = case.bias.as_ref().map(|b| upload(gpu, &rounded(b, precision).1));
    let (h, w, targets, g) = (upload(gpu, &h), upload(gpu, &w), upload(gpu, &case.targets), upload(gpu, &case.g));
    let loss_len = case.g.len();
    let outs: Vec<wgpu::Buffer> =
        [loss_len, n * hd, v * hd, v].iter().map(|&len| upload(gpu, &vec![0.0f32; len])).collect();
    let mut buffers = LinearBuffers::new(h.slice(..), w.slice(..), targets.slice(..))
        .weight_layout(layout)
        .precision(precision)
        .grad_output(g.slice(..))
        .loss(outs[0].slice(..))
        .grad_hidden(outs[1].slice(..))
        .grad_weight(outs[2].slice(..));
    if let Some(b) = &bias {
        buffers = buffers.bias(b.slice(..)).grad_bias(outs[3].slice(..));
    }
    let mut ws = Workspace::new(gpu);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    gpu.encode_linear_cross_entropy(&mut encoder, &mut ws, &buffers, n, hd, v, &case.opts).unwrap();
    gpu.queue().submit([encoder.finish()]);
    let mut got: Vec<Vec<f32>> = outs[..3].iter().map(|b| download(gpu, b, 0, b.size() as usize / 4)).collect();
    if bias.is_some() {
        got.push(download(gpu, &outs[3], 0, v));
    }
    got
}

/// The default path's `Gpu` and the matrix's one in the other form of the linear products.
fn both_forms() -> [&'static Gpu; 2] {
    let other = crate::harness::matrix()
        .paths()
        .find(|p| p.is_linear_form())
        .expect("one linear entry differs from the default");
    [gpu(), &other.gpu]
}

/// Both weight layouts in f32, f16 and bf16 (inputs rounded to the precision, the twin
/// run on the rounded values), with a bias, in both forms of the products, on sizes of
/// whole quads (f32: the vec4 kernels) and not: every product kernel in every precision.
fn layouts_and_precisions() {
    for (i, precision) in [Precision::F32, Precision::F16, Precision::Bf16].into_iter().enumerate() {
        for (layout, gpu, dims) in [WeightLayout::VocabByHidden, WeightLayout::HiddenByVocab]
            .into_iter()
            .flat_map(|l| both_forms().map(|g| (l, g)))
            .flat_map(|(l, g)| [(45, 37, 70), (45, 36, 72)].map(|d| (l, g, d)))
        {
            let mut case = Case::new(3000 + i as u64, dims, true, CrossEntropyOptions::default());
            case.h = rounded(&case.h, precision).0;
            case.w = rounded(&case.w, precision).0;
            case.bias = case.bias.map(|b| rounded(&b, precision).0);
            let (want, tol) = case.expect();
            let got = encode_run(gpu, &case, layout, precision);
            let form = if gpu.stages_linear_tiles() { "staged" } else { "direct" };
            let what = format!("{precision:?} {layout:?} {dims:?} {form}");
            Expect::new(want.grads.loss.clone(), tol.loss.clone()).check(&format!("linear_ce loss {what}"), &got[0]);
            Expect::new(want.grads.grad_hidden.clone(), tol.grad_hidden.clone())
                .check(&format!("linear_ce grad_hidden {what}"), &got[1]);
            let dw = laid_out(&want.grads.grad_weight, case.dims, layout);
            Expect::new(dw, laid_out(&tol.grad_weight, case.dims, layout))
                .check(&format!("linear_ce grad_weight {what}"), &got[2]);
            Expect::new(want.grads.grad_bias.clone().unwrap(), tol.grad_bias.clone())
                .check(&format!("linear_ce grad_bias {what}"), &got[3]);
        }
    }
}

/// A masked vocabulary: −inf bias entries give −inf logits and exactly 0 probability, so
/// exactly 0 gradient there without label smoothing; with it the loss is +inf (as
/// PyTorch's) and the gradients stay finite.
fn masked_vocabulary() {
    for eps in [0.0, 0.1] {
        let mut opts = CrossEntropyOptions::default();
        opts.label_smoothing = eps;
        opts.reduction = Reduction::None;
        let mut case = Case::new(4000, (20, 16, 40), true, opts);
        let bias = case.bias.as_mut().unwrap();
        for c in (1..40).step_by(3) {
            bias[c] = f32::NEG_INFINITY;
        }
        // Targets off the masked classes (1, 4, 7, …).
        case.targets.iter_mut().filter(|t| **t % 3 == 1).for_each(|t| *t -= 1);
        let expect = case.expect();
        let got = case.run(gpu()).unwrap();
        case.check(&format!("masked ε={eps}"), &got, &expect);
        let db = got.grads.grad_bias.as_ref().unwrap();
        for c in (1..40).step_by(3) {
            // p = 0 there: G = −g·q, which smoothing alone makes non-zero.
            assert!(if eps == 0.0 { db[c] == 0.0 } else { db[c].is_finite() }, "masked class {c}: ∂b {}", db[c]);
            assert!(got.grads.grad_weight[c * 16..(c + 1) * 16].iter().all(|v| v.is_finite()), "masked class {c}");
        }
    }
}

/// The unfused op: `encode_linear` into a logits buffer, `encode_cross_entropy` with its
/// gradient in place, `encode_linear_backward` — every output bit for bit as the fused op,
/// which runs the same kernels on chunks of the same rows.
fn equals_the_unfused_op() {
    for (i, reduction) in [Reduction::Mean, Reduction::Sum, Reduction::None].into_iter().enumerate() {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = reduction;
        opts.weight = Some((0..300).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect());
        let case = Case::new(5000 + i as u64, (70, 40, 300), true, opts);
        let (n, hd, v) = case.dims;
        let gpu = gpu_with(|o| o.linear_scratch_bytes = 4 * 32 * 300);
        let fused = encode_run(gpu, &case, WeightLayout::VocabByHidden, Precision::F32);
        let (h, w, b) = (upload(gpu, &case.h), upload(gpu, &case.w), upload(gpu, case.bias.as_ref().unwrap()));
        let (targets, g) = (upload(gpu, &case.targets), upload(gpu, &case.g));
        let logits = upload(gpu, &vec![0.0f32; n * v]);
        let outs: Vec<wgpu::Buffer> =
            [case.g.len(), n * hd, v * hd, v].iter().map(|&len| upload(gpu, &vec![0.0f32; len])).collect();
        let buffers = LinearBuffers::new(h.slice(..), w.slice(..), targets.slice(..))
            .bias(b.slice(..))
            .grad_hidden(outs[1].slice(..))
            .grad_weight(outs[2].slice(..))
            .grad_bias(outs[3].slice(..));
        let ce = wgpu_loss::LossBuffers::new(targets.slice(..))
            .input(logits.slice(..))
            .grad_in_place()
            .grad_output(g.slice(..))
            .loss(outs[0].slice(..));
        let (mut ws, mut ws_ce, mut ws_back) = (Workspace::new(gpu), Workspace::new(gpu), Workspace::new(gpu));
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        gpu.encode_linear(&mut encoder, &mut ws, &buffers, logits.slice(..), n, hd, v).unwrap();
        gpu.encode_cross_entropy(&mut encoder, &mut ws_ce, &ce, n, v, &case.opts).unwrap();
        gpu.encode_linear_backward(&mut encoder, &mut ws_back, &buffers, logits.slice(..), n, hd, v).unwrap();
        gpu.queue().submit([encoder.finish()]);
        for (k, name) in ["loss", "grad_hidden", "grad_weight", "grad_bias"].into_iter().enumerate() {
            let unfused = download(gpu, &outs[k], 0, fused[k].len());
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused[k]), bits(&unfused), "{name} {reduction:?}: fused and unfused differ");
        }
    }
}

/// The outputs over chunks of 16, 32 or 48 tokens are the bits of those over chunks of a
/// tenth of the tokens (64), in each form of the products (∂W and ∂b add the chunks' sums in
/// token order); and the two forms agree but for the sign of a zero.
fn bit_identical_across_scratch_budgets() {
    let case = Case::new(6000, (640, 24, 90), true, CrossEntropyOptions::default());
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut forms = Vec::new();
    for staged in [false, true] {
        let reference = encode_run(
            gpu_with(|o| o.linear_staged = Some(staged)),
            &case,
            WeightLayout::VocabByHidden,
            Precision::F32,
        );
        for tokens in [16u64, 32, 48] {
            let budget = 4 * tokens * 90 + 4 * 640 * 3;
            let gpu = gpu_with(|o| {
                o.linear_scratch_bytes = budget;
                o.linear_staged = Some(staged);
            });
            let got = encode_run(gpu, &case, WeightLayout::VocabByHidden, Precision::F32);
            for (k, (a, b)) in reference.iter().zip(&got).enumerate() {
                assert_eq!(bits(a), bits(b), "output {k}: chunks of {tokens} tokens differ (staged: {staged})");
            }
        }
        forms.push(reference);
    }
    for (k, (a, b)) in forms[0].iter().zip(&forms[1]).enumerate() {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(x == y || (x.is_nan() && y.is_nan()), "output {k}[{i}]: direct {x}, staged {y}");
        }
    }
}

/// `.accumulate()` adds ∂W and ∂b into what the buffers hold (∂h is overwritten).
fn accumulates_into_the_weight_gradients() {
    let case = Case::new(7000, (30, 12, 25), true, CrossEntropyOptions::default());
    let (n, hd, v) = case.dims;
    let (want, tol) = case.expect();
    let (h, w, b) = (upload(gpu(), &case.h), upload(gpu(), &case.w), upload(gpu(), case.bias.as_ref().unwrap()));
    let (targets, g) = (upload(gpu(), &case.targets), upload(gpu(), &case.g));
    let start_w: Vec<f32> = (0..v * hd).map(|i| (i % 7) as f32 - 3.0).collect();
    let start_b: Vec<f32> = (0..v).map(|i| (i % 3) as f32).collect();
    let (dh, dw, db) = (upload(gpu(), &vec![9.0f32; n * hd]), upload(gpu(), &start_w), upload(gpu(), &start_b));
    let buffers = LinearBuffers::new(h.slice(..), w.slice(..), targets.slice(..))
        .bias(b.slice(..))
        .grad_output(g.slice(..))
        .grad_hidden(dh.slice(..))
        .grad_weight(dw.slice(..))
        .grad_bias(db.slice(..))
        .accumulate();
    let mut ws = Workspace::new(gpu());
    let mut encoder = gpu().device().create_command_encoder(&Default::default());
    gpu().encode_linear_cross_entropy(&mut encoder, &mut ws, &buffers, n, hd, v, &case.opts).unwrap();
    gpu().queue().submit([encoder.finish()]);
    let plus = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<f32>>();
    let widened = |t: &[f64], base: &[f32]| t.iter().zip(base).map(|(t, b)| t + f64::from(b.abs()) * 1.2e-7).collect();
    Expect::new(want.grads.grad_hidden.clone(), tol.grad_hidden.clone())
        .check("linear_ce accumulate grad_hidden", &download(gpu(), &dh, 0, n * hd));
    Expect::new(plus(&want.grads.grad_weight, &start_w), widened(&tol.grad_weight, &start_w))
        .check("linear_ce accumulate grad_weight", &download(gpu(), &dw, 0, v * hd));
    Expect::new(plus(want.grads.grad_bias.as_ref().unwrap(), &start_b), widened(&tol.grad_bias, &start_b))
        .check("linear_ce accumulate grad_bias", &download(gpu(), &db, 0, v));
}

/// Every input and output at 4-byte (never 16-byte) offsets, fenced, in two arenas (one
/// buffer cannot be bound read-only and writable in one dispatch): the outputs right and
/// nothing else touched in either.
fn encodes_at_odd_offsets() {
    let case = Case::new(8000, (19, 13, 29), true, CrossEntropyOptions::default());
    let (n, hd, v) = case.dims;
    let (mut inputs, mut outputs) = (Arena::new(), Arena::new());
    let (h, w, b) = (inputs.put(&case.h), inputs.put(&case.w), inputs.put(case.bias.as_ref().unwrap()));
    let (t, g) = (inputs.put(&case.targets), inputs.put(&case.g));
    let outs =
        [outputs.output(1), outputs.output(n * hd), outputs.output(v * hd), outputs.output(v), outputs.output(n)];
    inputs.upload(gpu());
    outputs.upload(gpu());
    let buffers = LinearBuffers::new(inputs.slice(h), inputs.slice(w), inputs.slice(t))
        .bias(inputs.slice(b))
        .grad_output(inputs.slice(g))
        .loss(outputs.slice(outs[0]))
        .grad_hidden(outputs.slice(outs[1]))
        .grad_weight(outputs.slice(outs[2]))
        .grad_bias(outputs.slice(outs[3]))
        .lse(outputs.slice(outs[4]));
    let mut ws = Workspace::new(gpu());
    let mut encoder = gpu().device().create_command_encoder(&Default::default());
    gpu().encode_linear_cross_entropy(&mut encoder, &mut ws, &buffers, n, hd, v, &case.opts).unwrap();
    gpu().queue().submit([encoder.finish()]);
    assert!(inputs.read(gpu(), "linear_cross_entropy inputs").is_empty());
    let got = outputs.read(gpu(), "linear_cross_entropy outputs");
    let (want, tol) = case.expect();
    let expected = [
        ("loss", want.grads.loss, tol.loss),
        ("grad_hidden", want.grads.grad_hidden, tol.grad_hidden),
        ("grad_weight", want.grads.grad_weight, tol.grad_weight),
        ("grad_bias", want.grads.grad_bias.unwrap(), tol.grad_bias),
        ("lse", want.lse, tol.lse),
    ];
    for ((name, want, tol), got) in expected.into_iter().zip(&got) {
        Expect::new(want, tol).check(&format!("linear_ce arena {name}"), got);
    }
}

/// Bad input: a clear `Err` naming the argument, before anything is recorded.
fn bad_input_is_an_err() {
    let gpu = gpu();
    let opts = CrossEntropyOptions::default();
    let (h, w) = (vec![0.5f32; 6], vec![0.25f32; 9]);
    let arg = |r: wgpu_loss::Result<Vec<f32>>| match r {
        Err(Error::InvalidArgument { argument, .. } | Error::LengthMismatch { argument, .. }) => argument,
        other => panic!("expected an argument error, got {other:?}"),
    };
    let mut spatial = opts.clone();
    spatial.spatial = 2;
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w, None, &[0, 1], 2, 3, 3, &spatial)), "spatial");
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w, None, &[0, 1], 0, 3, 3, &opts)), "tokens");
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w, None, &[0, 1], 2, 0, 3, &opts)), "hidden_size");
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w, None, &[0, 1], 2, 3, 0, &opts)), "vocab");
    assert_eq!(arg(gpu.linear_cross_entropy(&h[..5], &w, None, &[0, 1], 2, 3, 3, &opts)), "hidden");
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w[..8], None, &[0, 1], 2, 3, 3, &opts)), "weight");
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w, Some(&[0.0; 2]), &[0, 1], 2, 3, 3, &opts)), "bias");
    assert_eq!(arg(gpu.linear_cross_entropy(&h, &w, None, &[0], 2, 3, 3, &opts)), "targets");
    let bad_target = gpu.linear_cross_entropy(&h, &w, None, &[0, 7], 2, 3, 3, &opts);
    assert!(matches!(bad_target, Err(Error::InvalidTarget { row: 1, value: 7, .. })), "{bad_target:?}");
    let tiny = gpu_with(|o| o.linear_scratch_bytes = 64);
    let too_large = tiny.linear_cross_entropy(&h, &w, None, &[0, 1], 2, 3, 3, &opts);
    assert!(matches!(too_large, Err(Error::TooLarge { argument: "vocab", .. })), "{too_large:?}");
    // The encode API: a gradient in a buffer the op reads, a bias gradient without a bias.
    let (hb, wb, tb) = (upload(gpu, &h), upload(gpu, &w), upload(gpu, &[0i32, 1]));
    let grad = upload(gpu, &[0.0f32; 9]);
    let mut ws = Workspace::new(gpu);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let base = LinearBuffers::new(hb.slice(..24), wb.slice(..), tb.slice(..));
    for (buffers, argument) in [
        (base.grad_hidden(hb.slice(..)), "grad_hidden"),
        (base.grad_bias(grad.slice(..12)), "grad_bias"),
        (base, "buffers"),
    ] {
        let err = gpu.encode_linear_cross_entropy(&mut encoder, &mut ws, &buffers, 2, 3, 3, &opts).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { argument: a, .. } if a == argument), "{argument}: {err:?}");
    }
}

/// The tolerances catch a 0.1 % error: every element of a typical batch whose value is
/// not a near-cancellation (its terms at most [`CANCEL`] × its size) has a tolerance
/// below a thousandth of it — all of the loss and ∂b, 89 % of ∂h and 63 % of ∂W here (∂W
/// sums 64 tokens' `G·h` of random sign, a random walk of about √64 times a term) — and
/// each output's largest entry × 1.001 is refused. The logits' own f32 error (`growth(H)`
/// ulps of their terms) is what bounds the gradients' relative accuracy to ~1e-4.
fn catches_a_tenth_of_a_percent() {
    let case = Case::new(9000, (64, 64, 257), true, CrossEntropyOptions::default());
    let (want, tol) = case.expect();
    let outputs = [
        ("loss", &want.grads.loss, &tol.loss, None),
        ("grad_hidden", &want.grads.grad_hidden, &tol.grad_hidden, Some(&tol.terms[0])),
        ("grad_weight", &want.grads.grad_weight, &tol.grad_weight, Some(&tol.terms[1])),
        ("grad_bias", want.grads.grad_bias.as_ref().unwrap(), &tol.grad_bias, Some(&tol.terms[2])),
    ];
    for (name, want, tol, terms) in outputs {
        let mut checked = 0;
        for (i, (&w, &t)) in want.iter().zip(tol.iter()).enumerate() {
            let w = f64::from(w);
            if w == 0.0 || terms.is_some_and(|terms| CANCEL * w.abs() < terms[i]) {
                continue;
            }
            checked += 1;
            assert!(t < 1e-3 * w.abs(), "{name}[{i}]: tolerance {t:e} lets a 0.1 % error of {w:e} pass");
        }
        assert!(checked * 10 >= want.len() * 6, "{name}: only {checked} of {} elements checked", want.len());
        let expect = Expect::new(want.clone(), tol.clone());
        let mut bad = want.clone();
        let i = (0..bad.len()).fold(0, |m, i| if bad[i].abs() > bad[m].abs() { i } else { m });
        bad[i] *= 1.001;
        assert!(expect.try_check(&format!("tolerances linear {name}"), &bad).is_err(), "{name}: × 1.001 passed");
    }
}
