//! PyTorch's own results for every op of the crate (`tests/data/torch_cases.txt`, written by
//! `tests/data/make_torch_cases.py` with torch 2.15.0 in float64, autograd gradients, from
//! float32 inputs), run through the CPU twins ([`run_cpu`]) and the GPU slice API
//! ([`run_gpu`]) on every path, and the trials that hold both to them ([`tests`]): the CPU
//! twins to an ulp, the GPU to the per-element tolerances it is held to everywhere.
//!
//! The file's format is described in the script's docstring: a header line
//! `case <name> <op> key=value ...` per case, then one line per named field.

use std::sync::OnceLock;

use libtest_mimic::{Failed, Trial};
use wgpu_loss::{
    BceOptions, CrossEntropyOptions, Extras, Gpu, KlDivOptions, KlDivReduction, Reduction, SoftmaxOp, cpu,
};

use crate::elementwise::{self, Case as ElementwiseCase};
use crate::harness::{self, Path, Shape, Targets, tol};

/// The fixture file, compiled in.
const FIXTURES: &str = include_str!("../data/torch_cases.txt");

/// The fields that are inputs of the crate's functions (float32-representable by construction).
const INPUT_FIELDS: [&str; 6] = ["input", "target", "weight", "pos_weight", "forward_output", "grad_output"];

/// Every op the fixtures cover, with the outputs [`run_cpu`] and [`run_gpu`] return for it:
/// `(output name, the fixture field holding PyTorch's value)`. The cross-entropy family is
/// run through each of its forms (loss only, gradient only, fused, with extras), each
/// compared with the same PyTorch values.
const OPS: [(&str, &[(&str, &str)]); 15] = [
    ("log_softmax", &[("output", "output")]),
    ("softmax", &[("output", "output")]),
    ("log_softmax_backward", &[("grad", "grad")]),
    ("softmax_backward", &[("grad", "grad")]),
    ("cross_entropy", CROSS_ENTROPY_OUTPUTS),
    ("cross_entropy_probs", LOSS_GRAD_FUSED),
    ("nll_loss", &[("loss", "loss"), ("grad", "grad")]),
    ("binary_cross_entropy_with_logits", LOSS_GRAD_FUSED),
    ("binary_cross_entropy", LOSS_GRAD_FUSED),
    ("mse_loss", LOSS_GRAD_FUSED),
    ("l1_loss", LOSS_GRAD_FUSED),
    ("smooth_l1_loss", LOSS_GRAD_FUSED),
    ("huber_loss", LOSS_GRAD_FUSED),
    ("kl_div", LOSS_GRAD_FUSED),
    ("rmse_loss", LOSS_GRAD_FUSED),
];

/// `<loss>`, `<loss>_grad` and `<loss>_with_grad`.
const LOSS_GRAD_FUSED: &[(&str, &str)] =
    &[("loss", "loss"), ("grad", "grad"), ("fused_loss", "loss"), ("fused_grad", "grad")];

/// Those three, then `cross_entropy_with_extras` with every extra output.
const CROSS_ENTROPY_OUTPUTS: &[(&str, &str)] = &[
    ("loss", "loss"),
    ("grad", "grad"),
    ("fused_loss", "loss"),
    ("fused_grad", "grad"),
    ("extras_loss", "loss"),
    ("extras_grad", "grad"),
    ("lse", "lse"),
    ("argmax", "argmax"),
    ("accuracy", "accuracy"),
];

/// One case: which op, its parameters, inputs and PyTorch's outputs.
#[derive(Debug, Clone)]
pub struct TorchCase {
    /// Unique name of the case.
    pub name: String,
    /// The crate's function family (`cross_entropy`, `kl_div`, `log_softmax_backward`, ...).
    pub op: String,
    /// Line of the case's header in the fixture file.
    pub line: usize,
    /// PyTorch's input shape: `[N, C]` or `[N, C, d1, d2]` (the crate's `rows` = N,
    /// `classes` = C, `spatial` = d1·d2; an elementwise op's `n` is the product).
    pub shape: Vec<usize>,
    /// The other header parameters as written (`reduction`, `ignore_index`,
    /// `label_smoothing`, `z_loss_scale`, `logit_softcap`, `beta`, `delta`, `log_target`).
    pub params: Vec<(String, String)>,
    /// The inputs (`input`, `target` of the tensor-target ops, `weight`, `pos_weight`,
    /// `forward_output`, `grad_output`), exactly the float32 values PyTorch computed from.
    pub inputs: Vec<(String, Vec<f32>)>,
    /// Class-index targets (`cross_entropy`, `nll_loss`), in `(n, d1, d2)` order.
    pub class_targets: Vec<i32>,
    /// PyTorch's float64 results (`loss`, `grad`, `output`, `lse`, `argmax`, `accuracy`).
    pub outputs: Vec<(String, Vec<f64>)>,
    /// Fixture fields (`loss`, `grad`) on which the crate documents a deliberate difference
    /// from PyTorch (the file's comment above the case says which). Every element that
    /// differs there is non-finite on one side (PyTorch's NaN where the crate gives 0, or
    /// the crate's NaN where PyTorch gives ±inf or 0).
    pub diverges: Vec<String>,
}

impl TorchCase {
    /// The header parameter `key`, if given.
    fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The float32 parameter `key`, or `default` when it is absent.
    fn param_f32(&self, key: &str, default: f32) -> f32 {
        self.param(key)
            .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{}: {key}={v} is not a number", self.name)))
    }

    /// The input field `key` (empty when absent).
    fn input(&self, key: &str) -> &[f32] {
        self.inputs.iter().find(|(k, _)| k == key).map_or(&[], |(_, v)| v.as_slice())
    }

    /// The input field `key`, `None` when absent.
    fn optional(&self, key: &str) -> Option<Vec<f32>> {
        self.inputs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// PyTorch's output field `key`.
    fn output(&self, key: &str) -> &[f64] {
        self.outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_else(|| panic!("{}: no `{key}` line", self.name))
    }

    /// `(rows, classes, spatial)` of the row-wise ops.
    fn dims(&self) -> (usize, usize, usize) {
        (self.shape[0], self.shape[1], self.shape[2..].iter().product())
    }

    /// The number of elements (an elementwise op's `n`).
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn reduction(&self) -> Reduction {
        match self.param("reduction") {
            Some("none") => Reduction::None,
            Some("sum") => Reduction::Sum,
            Some("mean") => Reduction::Mean,
            other => panic!("{}: reduction {other:?}", self.name),
        }
    }

    fn ce_options(&self) -> CrossEntropyOptions {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = self.reduction();
        opts.weight = self.optional("weight");
        opts.ignore_index = self.param("ignore_index").map_or(-100, |v| v.parse().unwrap());
        opts.label_smoothing = self.param_f32("label_smoothing", 0.0);
        opts.spatial = self.dims().2;
        opts.z_loss_scale = self.param_f32("z_loss_scale", 0.0);
        opts.logit_softcap = self.param_f32("logit_softcap", 0.0);
        opts
    }

    fn bce_options(&self) -> BceOptions {
        let mut opts = BceOptions::default();
        opts.reduction = self.reduction();
        opts.weight = self.optional("weight");
        opts.pos_weight = self.optional("pos_weight");
        opts
    }

    fn kl_options(&self) -> KlDivOptions {
        let mut opts = KlDivOptions::default();
        opts.reduction = match self.param("reduction") {
            Some("none") => KlDivReduction::None,
            Some("sum") => KlDivReduction::Sum,
            Some("mean") => KlDivReduction::Mean,
            Some("batchmean") => KlDivReduction::BatchMean,
            other => panic!("{}: kl_div reduction {other:?}", self.name),
        };
        opts.log_target = self.param("log_target") == Some("true");
        opts
    }

    fn softmax_op(&self) -> SoftmaxOp {
        match self.op.as_str() {
            "log_softmax" => SoftmaxOp::LogSoftmax,
            "softmax" => SoftmaxOp::Softmax,
            "log_softmax_backward" => SoftmaxOp::LogSoftmaxBackward,
            _ => SoftmaxOp::SoftmaxBackward,
        }
    }

    /// `(output name, fixture field)` of each output of this case's op.
    fn output_names(&self) -> &'static [(&'static str, &'static str)] {
        OPS.iter()
            .find(|(op, _)| *op == self.op)
            .map(|(_, names)| *names)
            .unwrap_or_else(|| panic!("{}: unknown op {}", self.name, self.op))
    }
}

/// Parses one value of `field` of `case` as f64 (Rust's parser takes `nan`, `inf`, `-inf`).
fn parse_f64(case: &str, field: &str, text: &str) -> f64 {
    text.parse().unwrap_or_else(|_| panic!("{case}: `{field}` has a bad number {text:?}"))
}

/// Parses an input value as f32, checking that it is exactly the f64 the file holds.
fn parse_f32(case: &str, field: &str, text: &str) -> f32 {
    let v: f32 = text.parse().unwrap_or_else(|_| panic!("{case}: `{field}` has a bad number {text:?}"));
    let wide = parse_f64(case, field, text);
    assert!(
        f64::from(v) == wide || (v.is_nan() && wide.is_nan()),
        "{case}: `{field}` value {text} is not float32-representable"
    );
    v
}

/// Parses the fixture text.
fn parse(text: &str) -> Vec<TorchCase> {
    let mut cases: Vec<TorchCase> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let key = words.next().unwrap_or_default();
        if key == "case" {
            let (Some(name), Some(op)) = (words.next(), words.next()) else {
                panic!("line {}: `case <name> <op> key=value...` expected", index + 1);
            };
            let mut case = TorchCase {
                name: name.to_string(),
                op: op.to_string(),
                line: index + 1,
                shape: Vec::new(),
                params: Vec::new(),
                inputs: Vec::new(),
                class_targets: Vec::new(),
                outputs: Vec::new(),
                diverges: Vec::new(),
            };
            for word in words {
                let (k, v) = word.split_once('=').unwrap_or_else(|| panic!("{name}: `{word}` is not key=value"));
                match k {
                    "shape" => case.shape = v.split(',').map(|d| d.parse().unwrap()).collect(),
                    "diverges" => case.diverges = v.split(',').map(str::to_string).collect(),
                    "reduction" | "ignore_index" | "label_smoothing" | "z_loss_scale" | "logit_softcap" | "beta"
                    | "delta" | "log_target" => case.params.push((k.to_string(), v.to_string())),
                    _ => panic!("{name}: unknown key `{k}`"),
                }
            }
            assert!(case.shape.len() >= 2, "{name}: no shape");
            cases.push(case);
            continue;
        }
        let case = cases.last_mut().unwrap_or_else(|| panic!("line {}: a field before any case", index + 1));
        let name = case.name.as_str();
        if key == "target" && matches!(case.op.as_str(), "cross_entropy" | "nll_loss") {
            case.class_targets = words.map(|v| v.parse().unwrap()).collect();
        } else if INPUT_FIELDS.contains(&key) {
            let values = words.map(|v| parse_f32(name, key, v)).collect();
            case.inputs.push((key.to_string(), values));
        } else {
            let values = words.map(|v| parse_f64(name, key, v)).collect();
            case.outputs.push((key.to_string(), values));
        }
    }
    cases
}

/// Every case of the fixture file(s), parsed once.
pub fn cases() -> &'static [TorchCase] {
    static CASES: OnceLock<Vec<TorchCase>> = OnceLock::new();
    CASES.get_or_init(|| parse(FIXTURES))
}

/// `result` or a panic naming the case.
fn ok<T>(case: &TorchCase, result: wgpu_loss::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{} (line {}): {e}", case.name, case.line))
}

/// `<loss>`, `<loss>_grad` and `<loss>_with_grad` of an elementwise loss on `api`
/// (`cpu::` or `gpu.`), with the loss's own arguments.
macro_rules! elementwise {
    ([$($api:tt)+], $case:expr, $loss:ident, $grad:ident, $with_grad:ident $(, $arg:expr)*) => {{
        let case: &TorchCase = $case;
        let (x, y, n, g) = (case.input("input"), case.input("target"), case.numel(), case.input("grad_output"));
        let (fused_loss, fused_grad) = ok(case, $($api)+ $with_grad(x, y, n $(, $arg)*, g));
        vec![
            ("loss", ok(case, $($api)+ $loss(x, y, n $(, $arg)*))),
            ("grad", ok(case, $($api)+ $grad(x, y, n $(, $arg)*, g))),
            ("fused_loss", fused_loss),
            ("fused_grad", fused_grad),
        ]
    }};
}

/// Runs `case` through `api` (`cpu::` or `gpu.`: the CPU twins and the slice API take the same
/// arguments), returning the outputs named by [`TorchCase::output_names`].
macro_rules! run_case {
    ($case:expr, $($api:tt)+) => {{
        let case: &TorchCase = $case;
        let (rows, classes, spatial) = case.dims();
        let g = case.input("grad_output");
        let out: Vec<(&'static str, Vec<f32>)> = match case.op.as_str() {
            "log_softmax" | "softmax" | "log_softmax_backward" | "softmax_backward" => {
                let backward = case.op.ends_with("_backward");
                let x = case.input(if backward { "forward_output" } else { "input" });
                let out = match (case.op.as_str(), spatial) {
                    ("log_softmax", 1) => $($api)+ log_softmax(x, rows, classes),
                    ("softmax", 1) => $($api)+ softmax(x, rows, classes),
                    ("log_softmax_backward", 1) => $($api)+ log_softmax_backward(x, g, rows, classes),
                    ("softmax_backward", 1) => $($api)+ softmax_backward(x, g, rows, classes),
                    _ => $($api)+ softmax_spatial(case.softmax_op(), x, backward.then_some(g), rows, classes, spatial),
                };
                vec![(if backward { "grad" } else { "output" }, ok(case, out))]
            }
            "cross_entropy" => {
                let (x, t, opts) = (case.input("input"), case.class_targets.as_slice(), case.ce_options());
                let (fused_loss, fused_grad) = ok(case, $($api)+ cross_entropy_with_grad(x, t, rows, classes, &opts, g));
                let extras = ok(case, $($api)+ cross_entropy_with_extras(x, t, rows, classes, &opts, Extras::all(), Some(g)));
                vec![
                    ("loss", ok(case, $($api)+ cross_entropy(x, t, rows, classes, &opts))),
                    ("grad", ok(case, $($api)+ cross_entropy_grad(x, t, rows, classes, &opts, g))),
                    ("fused_loss", fused_loss),
                    ("fused_grad", fused_grad),
                    ("extras_loss", extras.loss),
                    ("extras_grad", extras.grad),
                    ("lse", extras.lse),
                    ("argmax", extras.argmax.iter().map(|&a| a as f32).collect()),
                    ("accuracy", extras.accuracy.into_iter().collect()),
                ]
            }
            "cross_entropy_probs" => {
                let (x, p, opts) = (case.input("input"), case.input("target"), case.ce_options());
                let (fused_loss, fused_grad) = ok(case, $($api)+ cross_entropy_probs_with_grad(x, p, rows, classes, &opts, g));
                vec![
                    ("loss", ok(case, $($api)+ cross_entropy_probs(x, p, rows, classes, &opts))),
                    ("grad", ok(case, $($api)+ cross_entropy_probs_grad(x, p, rows, classes, &opts, g))),
                    ("fused_loss", fused_loss),
                    ("fused_grad", fused_grad),
                ]
            }
            "nll_loss" => {
                let (x, t, opts) = (case.input("input"), case.class_targets.as_slice(), case.ce_options());
                vec![
                    ("loss", ok(case, $($api)+ nll_loss(x, t, rows, classes, &opts))),
                    ("grad", ok(case, $($api)+ nll_loss_grad(t, rows, classes, &opts, g))),
                ]
            }
            "binary_cross_entropy_with_logits" => elementwise!(
                [$($api)+], case, binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad,
                binary_cross_entropy_with_logits_with_grad, &case.bce_options()
            ),
            "binary_cross_entropy" => elementwise!(
                [$($api)+], case, binary_cross_entropy, binary_cross_entropy_grad, binary_cross_entropy_with_grad,
                &case.bce_options()
            ),
            "mse_loss" => elementwise!([$($api)+], case, mse_loss, mse_loss_grad, mse_loss_with_grad, case.reduction()),
            "l1_loss" => elementwise!([$($api)+], case, l1_loss, l1_loss_grad, l1_loss_with_grad, case.reduction()),
            "smooth_l1_loss" => elementwise!(
                [$($api)+], case, smooth_l1_loss, smooth_l1_loss_grad, smooth_l1_loss_with_grad, case.reduction(),
                case.param_f32("beta", 1.0)
            ),
            "huber_loss" => elementwise!(
                [$($api)+], case, huber_loss, huber_loss_grad, huber_loss_with_grad, case.reduction(),
                case.param_f32("delta", 1.0)
            ),
            "kl_div" => elementwise!([$($api)+], case, kl_div, kl_div_grad, kl_div_with_grad, rows, &case.kl_options()),
            "rmse_loss" => elementwise!([$($api)+], case, rmse_loss, rmse_loss_grad, rmse_loss_with_grad),
            op => panic!("{}: unknown op {op}", case.name),
        };
        out
    }};
}

/// The case run through the crate's CPU twin (`wgpu_loss::cpu`): each output by name ("loss",
/// "grad", "lse", "argmax", ...). The cross-entropy family, NLL and the elementwise losses run
/// each of their forms: `loss` and `grad` from the separate functions, `fused_loss` and
/// `fused_grad` from `<op>_with_grad`, and for `cross_entropy` also `extras_loss`,
/// `extras_grad`, `lse`, `argmax` (indices as f32) and `accuracy` from
/// `cross_entropy_with_extras(.., Extras::all(), Some(grad_output))`.
pub fn run_cpu(case: &TorchCase) -> Vec<(&'static str, Vec<f32>)> {
    run_case!(case, cpu::)
}

/// The same case run through the GPU slice API on `gpu` (same output names and order).
pub fn run_gpu(case: &TorchCase, gpu: &Gpu) -> Vec<(&'static str, Vec<f32>)> {
    run_case!(case, gpu.)
}

/// PyTorch's float64 value of each output of `case`, by the names of [`run_cpu`].
fn reference(case: &TorchCase) -> Vec<(&'static str, &[f64])> {
    let names = case.output_names();
    names.iter().map(|&(name, field)| (name, case.output(field))).collect()
}

/// PyTorch's outputs for the same names (rounded to f32 once; argmax as f32 indices).
pub fn expected(case: &TorchCase) -> Vec<(&'static str, Vec<f32>)> {
    reference(case).into_iter().map(|(name, values)| (name, values.iter().map(|&v| v as f32).collect())).collect()
}

// The CPU twins' tolerance.
//
// A twin computes in f64 from the same f32 inputs as PyTorch and rounds its result to f32
// once; PyTorch's f64 result `e` is read exactly. With `t` the twin's f64 value,
//
//   |twin − e| ≤ |round_f32(t) − t| + |t − e|.
//
// The first term is at most half an f32 ulp (round to nearest). The second is the gap
// between two f64 evaluations of the same formula in different orders, each within a few
// hundred u = 2^-53 of the exact value relative to the terms it combines. Where nothing
// cancels that is far below an f32 ulp (2^-24 relative). Where terms cancel (a loss
// `lse − x_t` with logits of 1e4, a gradient `g·(p·S − q)`, `dy − p·Σdy`, KL's
// `t·log t − t·q`, a sum of row losses), the gap is absolute and bounded by the size of the
// terms: a row's log-sum-exp carries about (M + C)·u (|max|·u from the shift, C·u from a
// sum of C exponentials ≤ 1 each, then its log), which weights up to W, an upstream
// gradient up to G (divided by a mean's Σ w[t_i] when that is below 1) and, for a reduced
// loss, a sum over R rows scale. So each element gets the floor
//
//   floor = 2^-48 · (M + C) · W · G · R       (2^-48 = 32·u: room for both evaluations)
//
// where M = max(1, largest finite |input| and |target|) over the inputs that element is
// computed from (its row — the C classes of its (n, d1, d2) position — for the row-wise
// ops, the element itself for the elementwise ones, every input for a reduced loss; 1 for
// the backward ops, whose terms `dy`, `exp(y)·Σdy`, `y·dy` involve no shift by a maximum
// and are bounded by C·G since exp(y), p ≤ 1; at most max(1, cap) with soft-capping, as the
// loss only sees `cap·tanh(x/cap)`), C = classes (1 for
// elementwise ops), W = max(1, largest |weight|, |pos_weight|) (the element's own weight for
// the elementwise losses), G = 1 for forward outputs and max(1, the element's largest finite
// |grad_output|) / min(1, Σ w[t_i]) for gradients, and R = 1, or the rows × positions (the
// elements) that a reduced loss sums. The comparison is
//
//   |twin − e| ≤ ulp_f32(e) + floor
//
// with ulp_f32(e) the spacing of f32 at |e| (2^(⌊log2|e|⌋ − 23), 2^-149 below the normal
// range): twice the rounding bound. The accuracy, one division of two counts in f64 on both
// sides, gets no floor. Non-finite expected values (after rounding to f32) must
// match exactly: NaN ↔ NaN, +inf ↔ +inf, −inf ↔ −inf; so must argmax. The trial
// `planted_error_is_caught` shows that a 0.1 % error anywhere is caught.

/// The spacing of f32 numbers at `|e|` (2^-149 in the subnormal range and at 0).
fn f32_ulp(e: f64) -> f64 {
    let biased = ((e.abs().to_bits() >> 52) & 0x7ff) as i32;
    let exponent = if biased == 0 { -1074 } else { biased - 1023 };
    2f64.powi(exponent.max(-126) - 23)
}

/// Largest finite |v| of `values`, at least 1.
fn scale_of(values: &[f32]) -> f64 {
    values.iter().filter(|v| v.is_finite()).fold(1.0, |m: f64, &v| m.max(f64::from(v.abs())))
}

/// Whether `case`'s op is elementwise (else row-wise over the classes).
fn is_elementwise(case: &TorchCase) -> bool {
    !matches!(
        case.op.as_str(),
        "log_softmax"
            | "softmax"
            | "log_softmax_backward"
            | "softmax_backward"
            | "cross_entropy"
            | "cross_entropy_probs"
            | "nll_loss"
    )
}

/// The absolute floor of each element of `case`'s output `name` of `len` values (see the
/// derivation above).
fn floors(case: &TorchCase, name: &str, len: usize) -> Vec<f64> {
    let unit = 2f64.powi(-48);
    if name == "accuracy" {
        // A ratio of two counts: both sides divide the same integers once in f64.
        return vec![0.0; len];
    }
    let numel = case.numel();
    let (rows, classes, spatial) = case.dims();
    let gradient = name.ends_with("grad");
    let g = case.input("grad_output");
    let inputs: Vec<&[f32]> = ["input", "target"].iter().map(|k| case.input(k)).filter(|v| v.len() == numel).collect();
    // The largest finite |input| at element i.
    let magnitude = |i: usize| -> f64 { inputs.iter().map(|v| scale_of(&v[i..=i])).fold(1.0, f64::max) };
    let weight = case.input("weight");
    let w_all = scale_of(weight).max(scale_of(case.input("pos_weight")));
    if is_elementwise(case) {
        let m_all = (0..numel).map(magnitude).fold(1.0, f64::max);
        if len == 1 {
            let g = if gradient { scale_of(g) } else { 1.0 };
            return vec![unit * (m_all + 1.0) * w_all * g * numel as f64];
        }
        return (0..len)
            .map(|i| {
                let w = if weight.len() == numel {
                    scale_of(&weight[i..=i]).max(scale_of(case.input("pos_weight")))
                } else {
                    w_all
                };
                let g = match (gradient, g.len() == numel) {
                    (false, _) => 1.0,
                    (true, true) => scale_of(&g[i..=i]),
                    (true, false) => scale_of(g),
                };
                unit * (magnitude(i) + 1.0) * w * g
            })
            .collect();
    }
    // Row-wise: position p = n·spatial + s holds the classes (n·C + c)·spatial + s.
    let positions = rows * spatial;
    let members = |p: usize| (0..classes).map(move |c| ((p / spatial) * classes + c) * spatial + p % spatial);
    // Soft-capped logits are at most the cap in size.
    let cap = f64::from(case.param_f32("logit_softcap", 0.0));
    let m_at: Vec<f64> = (0..positions)
        .map(|p| {
            let m = members(p).map(magnitude).fold(1.0, f64::max);
            if cap > 0.0 { m.min(cap.max(1.0)) } else { m }
        })
        .collect();
    let mean_divisor = match (case.op.as_str(), case.param("reduction")) {
        ("cross_entropy" | "nll_loss", Some("mean")) => {
            let opts = case.ce_options();
            let counted = case.class_targets.iter().filter(|&&t| t != opts.ignore_index);
            let d: f64 = counted.map(|&t| opts.weight.as_ref().map_or(1.0, |w| f64::from(w[t as usize]))).sum();
            if d > 0.0 { d.min(1.0) } else { 1.0 }
        }
        _ => 1.0,
    };
    let g_at = |p: usize| -> f64 {
        if !gradient {
            1.0
        } else if g.len() == numel {
            members(p).map(|i| scale_of(&g[i..=i])).fold(1.0, f64::max)
        } else if g.len() == positions {
            scale_of(&g[p..=p])
        } else {
            scale_of(g) / mean_divisor
        }
    };
    let c = classes as f64;
    if len == numel {
        (0..len)
            .map(|i| {
                let p = (i / (classes * spatial)) * spatial + i % spatial;
                unit * (m_at[p] + c) * w_all * g_at(p)
            })
            .collect()
    } else if len == positions {
        (0..len).map(|p| unit * (m_at[p] + c) * w_all * g_at(p)).collect()
    } else {
        let m = m_at.iter().copied().fold(1.0, f64::max);
        vec![unit * (m + c) * w_all * positions as f64; len]
    }
}

/// Whether `got` agrees with PyTorch's `e` for the CPU twins: exactly for non-finite and
/// argmax values, else within `ulp_f32(e) + floor`.
fn agrees(got: f32, e: f64, floor: f64, exact: bool) -> bool {
    let e32 = e as f32;
    if !e32.is_finite() || exact {
        return got == e32 || (got.is_nan() && e32.is_nan());
    }
    got.is_finite() && (f64::from(got) - e).abs() <= f32_ulp(e) + floor
}

/// Checks the CPU outputs `got` of `case` against PyTorch: every element of every output
/// within the tolerance, except on the documented divergences, where every element that
/// differs must be non-finite on one side and at least one must differ.
fn check(case: &TorchCase, got: &[(&'static str, Vec<f32>)]) -> Result<(), String> {
    let names = case.output_names();
    let want = reference(case);
    let got_names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
    let want_names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    if got_names != want_names {
        return Err(format!("{}: outputs {got_names:?}, expected {want_names:?}", case.name));
    }
    for (((name, got), (_, want)), (_, field)) in got.iter().zip(&want).zip(names) {
        if got.len() != want.len() {
            return Err(format!("{} {name}: {} values, PyTorch has {}", case.name, got.len(), want.len()));
        }
        let exact = *name == "argmax";
        let floor = floors(case, name, want.len());
        let differing: Vec<usize> = (0..got.len()).filter(|&i| !agrees(got[i], want[i], floor[i], exact)).collect();
        if case.diverges.iter().any(|d| d == field) {
            if differing.is_empty() {
                return Err(format!(
                    "{} {name}: recorded as a divergence from PyTorch but agrees: update the fixture",
                    case.name
                ));
            }
            if let Some(&i) = differing.iter().find(|&&i| want[i].is_finite() && got[i].is_finite()) {
                return Err(format!(
                    "{} {name}[{i}]: {} where PyTorch gives {} (beyond the documented divergence)",
                    case.name, got[i], want[i]
                ));
            }
        } else if let Some(&i) = differing.first() {
            let e = want[i];
            return Err(format!(
                "{} (line {}) {name}[{i}]: cpu {:e}, PyTorch {e:e} (|diff| {:e} > ulp {:e} + floor {:e}); {} of {} elements differ",
                case.name,
                case.line,
                got[i],
                (f64::from(got[i]) - e).abs(),
                f32_ulp(e),
                floor[i],
                differing.len(),
                got.len()
            ));
        }
    }
    Ok(())
}

/// Every case of `op` through the CPU twins against PyTorch, all failures reported.
fn cpu_matches_pytorch(op: &str) -> Result<(), Failed> {
    let failures: Vec<String> =
        cases().iter().filter(|c| c.op == op).filter_map(|c| check(c, &run_cpu(c)).err()).collect();
    if failures.is_empty() { Ok(()) } else { Err(failures.join("\n").into()) }
}

/// The fixture covers every op, and each case has the inputs and outputs its op needs, with
/// the lengths its shape gives.
fn fixtures_are_complete() -> Result<(), Failed> {
    let cases = cases();
    for (op, _) in OPS {
        let count = cases.iter().filter(|c| c.op == op).count();
        if count < 3 {
            return Err(format!("only {count} cases of {op}").into());
        }
    }
    let mut names = std::collections::HashSet::new();
    for case in cases {
        if !names.insert(case.name.as_str()) {
            return Err(format!("two cases named {}", case.name).into());
        }
        let numel = case.numel();
        let (rows, _, spatial) = case.dims();
        let want = expected(case);
        let lengths_ok = match case.op.as_str() {
            "cross_entropy" | "nll_loss" => case.class_targets.len() == rows * spatial,
            "log_softmax_backward" | "softmax_backward" => case.input("forward_output").len() == numel,
            _ => case.input("input").len() == numel,
        } && want.iter().all(|(name, v)| match *name {
            "grad" | "output" => v.len() == numel,
            _ => !v.is_empty(),
        });
        if !lengths_ok {
            return Err(format!("{}: lengths do not match the shape {:?}", case.name, case.shape).into());
        }
    }
    Ok(())
}

/// Proof that the comparison is tight: in every output of every case that has a non-zero
/// PyTorch value finite in f32, a 0.1 % error planted in the twin's result at the largest
/// such value fails the check (the unperturbed result passes).
fn planted_error_is_caught() -> Result<(), Failed> {
    let mut planted = 0;
    for case in cases().iter().filter(|c| c.diverges.is_empty()) {
        let got = run_cpu(case);
        check(case, &got)?;
        for (k, (name, want)) in reference(case).into_iter().enumerate() {
            let largest = (0..want.len())
                .filter(|&i| (want[i] as f32).is_finite() && want[i] != 0.0)
                .max_by(|&a, &b| want[a].abs().total_cmp(&want[b].abs()));
            let Some(i) = largest else { continue };
            let mut wrong = got.clone();
            wrong[k].1[i] *= 1.001;
            if check(case, &wrong).is_ok() {
                return Err(format!("{} {name}[{i}]: a 0.1 % error passed", case.name).into());
            }
            planted += 1;
        }
    }
    if planted < 500 {
        return Err(format!("only {planted} outputs perturbed").into());
    }
    Ok(())
}

/// The GPU's tolerance for each output of `case` (see `harness::tol` and the elementwise
/// module): the same per-element bounds the GPU is held to against the CPU twins, which
/// agree with PyTorch to an ulp.
fn gpu_tolerances(case: &TorchCase) -> Vec<(&'static str, Vec<f64>)> {
    let (rows, classes, spatial) = case.dims();
    let shape = Shape::spatial(rows, classes, spatial);
    let (x, g) = (case.input("input"), case.input("grad_output"));
    let loss_grad = |t: tol::LossTol| {
        vec![
            ("loss", t.loss.clone()),
            ("grad", t.grad.clone()),
            ("fused_loss", t.loss.clone()),
            ("fused_grad", t.grad.clone()),
            ("extras_loss", t.loss),
            ("extras_grad", t.grad),
            ("lse", t.lse),
        ]
    };
    let elementwise = |c: ElementwiseCase| {
        let (loss, grad) = elementwise::tolerances(&c, x, case.input("target"), g);
        vec![("loss", loss.clone()), ("grad", grad.clone()), ("fused_loss", loss), ("fused_grad", grad)]
    };
    let reduction = || case.reduction();
    match case.op.as_str() {
        "log_softmax" => vec![("output", tol::log_softmax(x, shape))],
        "softmax" => vec![("output", tol::softmax(x, shape))],
        "log_softmax_backward" => vec![("grad", tol::log_softmax_backward(case.input("forward_output"), g, shape))],
        "softmax_backward" => vec![("grad", tol::softmax_backward(case.input("forward_output"), g, shape))],
        "cross_entropy" => {
            loss_grad(tol::cross_entropy(x, Targets::Index(&case.class_targets), shape, &case.ce_options(), g))
        }
        "cross_entropy_probs" => {
            loss_grad(tol::cross_entropy(x, Targets::Probs(case.input("target")), shape, &case.ce_options(), g))
        }
        "nll_loss" => {
            let t = tol::nll(x, &case.class_targets, shape, &case.ce_options(), g);
            vec![("loss", t.loss), ("grad", t.grad)]
        }
        "mse_loss" => elementwise(ElementwiseCase::Mse(reduction())),
        "l1_loss" => elementwise(ElementwiseCase::L1(reduction())),
        "rmse_loss" => elementwise(ElementwiseCase::Rmse),
        "smooth_l1_loss" => elementwise(ElementwiseCase::SmoothL1(reduction(), case.param_f32("beta", 1.0))),
        "huber_loss" => elementwise(ElementwiseCase::Huber(reduction(), case.param_f32("delta", 1.0))),
        "binary_cross_entropy" => elementwise(ElementwiseCase::Bce(case.bce_options())),
        "binary_cross_entropy_with_logits" => elementwise(ElementwiseCase::BceWithLogits(case.bce_options())),
        "kl_div" => elementwise(ElementwiseCase::KlDiv(rows, case.kl_options())),
        op => panic!("{}: unknown op {op}", case.name),
    }
}

/// Every case on `path` against PyTorch, with the GPU's tolerances (argmax exactly, the
/// accuracy's one division within 3e-7), but where the crate documents a divergence.
fn gpu_matches_pytorch(path: &'static Path) {
    for case in cases() {
        let (_, classes, spatial) = case.dims();
        // Row-wise ops bind whole rows (samples) per chunk, the elementwise losses whole
        // tiles of 2048 elements: a path whose bindings are smaller refuses them by design.
        let unit = if is_elementwise(case) { 2048 } else { classes * spatial };
        if !path.fits(unit) {
            continue;
        }
        let tolerances = gpu_tolerances(case);
        let want = expected(case);
        for (((name, got), (_, want)), &(_, field)) in
            run_gpu(case, &path.gpu).iter().zip(&want).zip(case.output_names())
        {
            if case.diverges.iter().any(|d| d == field) {
                continue;
            }
            let what = format!("{} {} (line {}) {name} on {}", case.op, case.name, case.line, path.label());
            let gpu_tol: Vec<f64> = match *name {
                "argmax" => vec![0.0; want.len()],
                "accuracy" => want.iter().map(|a| 3e-7 * f64::from(a.abs())).collect(),
                _ => tolerances
                    .iter()
                    .find(|(n, _)| n == name)
                    .unwrap_or_else(|| panic!("{what}: no tolerance"))
                    .1
                    .clone(),
            };
            // PyTorch's own value is good to the CPU twins' bound (an f32 ulp once rounded,
            // and the floor of its f64 cancellations: its BCE-with-logits slope at x = 30,
            // `σ(x) − 1` in f64, is off by 0.1 % where the crate's is not).
            let reference = floors(case, name, want.len());
            let tol: Vec<f64> = match *name {
                "argmax" | "accuracy" => gpu_tol,
                _ => (0..want.len()).map(|i| gpu_tol[i] + f32_ulp(f64::from(want[i])) + reference[i]).collect(),
            };
            harness::tol::assert_within(&format!("torch {what}"), got, want, &tol);
        }
    }
}

/// The trials of this module: the CPU twins against PyTorch (one trial per op family), the
/// fixture's completeness, the planted-error check, and that every case runs on the GPU.
pub fn tests() -> Vec<Trial> {
    let mut trials = vec![
        Trial::test("torch_reference::fixtures_are_complete", fixtures_are_complete),
        Trial::test("torch_reference::cpu::planted_error_is_caught", planted_error_is_caught),
    ];
    trials.extend(harness::per_path("torch_reference::gpu_matches_pytorch", gpu_matches_pytorch));
    trials.extend(
        OPS.iter().map(|&(op, _)| Trial::test(format!("torch_reference::cpu::{op}"), move || cpu_matches_pytorch(op))),
    );
    trials
}
