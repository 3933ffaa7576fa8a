//! Per-element tolerances, each derived from how its value is computed in f32 on the GPU,
//! and the comparison that applies them.
//! `wgpu-loss-burn`'s tests include this file by path: it depends on `wgpu_loss` and `std`
//! only.
//!
//! ## The model
//! Every bound is `K · ε · m`: `ε = 2⁻²³` (f32's epsilon), `m` the sum of the magnitudes of
//! the terms the value is made of (so cancellation never hides an error, and no element's
//! bound depends on another row), and `K = 4` a safety factor over this first-order model.
//! The terms come from the WGSL accuracy rules and the kernels' arithmetic:
//! * `exp(d)` is good to `3 + 2|d|` ulps, `log(s)` to 3 ulps (2⁻²¹ absolute near 1), `+ − ×`
//!   are correctly rounded, division to 2.5 ulps;
//! * a row's `s = Σ exp(x − max)` has relative error at most `3 + 2 ln C` ulps from the
//!   `exp`s (the softmax-weighted mean of `|x − max|` is at most the entropy, `≤ ln C`), plus
//!   the additions: sequential runs inside invocations, then a tree across them. The
//!   roundings of a run of `m` additions random-walk to about `0.3·√m` ulps of the sum (3σ:
//!   `√m`); every kernel splits a row of `C` classes over at least 8 invocations (or holds
//!   one of at most 32 classes), so runs are at most `C/8` long and the tree at most
//!   `log₂C` deep: `growth(C) = 2 + log₂C + √C/2` ulps bounds both with room;
//! * so the row's log-sum-exp `lse = max + log s` is off by at most
//!   `ε · (|max| + log s + 2 ln C + growth(C) + 4)` = `ε · scale` (the rounding of the sum
//!   and of `log`, and the relative error of `s`);
//! * a log-probability `x − lse` adds the rounding of `x`: `ε · (|x| + scale)`;
//! * a probability `exp(x − lse)` carries that error relatively, plus `exp`'s own
//!   `3 + 2|lp|` ulps; results below f32's smallest normal may be flushed to 0 (`FLUSH`);
//! * sums over a batch's rows grow like `growth(rows)` ulps of the sum of their magnitudes;
//!   a sum of terms of either sign, like `growth(n)` ulps of how far its partial sums reach.
//!
//! Non-finite expected values (and non-finite results) must match exactly: NaN ↔ NaN,
//! `±inf` ↔ `±inf`. Each bound is tight enough that a 0.1 % error in any one element of a
//! typical batch fails (tests in `tolerances.rs` prove it, element by element).

use std::collections::BTreeMap;
use std::sync::Mutex;

use wgpu_loss::{CrossEntropyOptions, EmptyPolicy, Reduction};

/// f32's epsilon.
pub const EPS: f64 = f32::EPSILON as f64;
/// The safety factor over the first-order model.
pub const K: f64 = 4.0;
/// Results below f32's smallest normal that a device may flush to 0.
pub const FLUSH: f64 = f32::MIN_POSITIVE as f64;

/// The safety factor of a sum's `growth`, itself a bound with room.
const SUM_K: f64 = 2.0;

/// The rounding growth of a sum of `n` terms, in ulps of the sum of their magnitudes
/// (see the model above).
pub fn growth(n: usize) -> f64 {
    let n = n.max(1) as f64;
    2.0 + n.log2() + n.sqrt() / 2.0
}

/// A batch of `n × spatial` rows of `classes` each: element (row `b·spatial + s`, class
/// `c`) at `(b·classes + c)·spatial + s` (`spatial = 1`: plain rows).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub n: usize,
    pub classes: usize,
    pub spatial: usize,
}

impl Shape {
    pub fn rows(n: usize, classes: usize) -> Self {
        Self { n, classes, spatial: 1 }
    }

    pub fn spatial(n: usize, classes: usize, spatial: usize) -> Self {
        Self { n, classes, spatial }
    }

    /// Rows the softmax runs over (one per loss value of `Reduction::None`).
    pub fn loss_rows(&self) -> usize {
        self.n * self.spatial
    }

    pub fn len(&self) -> usize {
        self.loss_rows() * self.classes
    }

    /// Where element (`row`, `c`) lies.
    pub fn at(&self, row: usize, c: usize) -> usize {
        let (b, s) = (row / self.spatial, row % self.spatial);
        (b * self.classes + c) * self.spatial + s
    }

    /// Row `row` of `v`, widened.
    pub fn row(&self, v: &[f32], row: usize) -> Vec<f64> {
        (0..self.classes).map(|c| f64::from(v[self.at(row, c)])).collect()
    }
}

/// What the error of a row's log-sum-exp is made of.
#[derive(Debug, Clone, Copy)]
pub struct RowStats {
    /// The largest finite entry (0 when none).
    pub max: f64,
    /// `ln Σ exp(x − max)`.
    pub log_sum: f64,
    /// Whether the row's log-softmax is finite somewhere: no NaN, no `+inf`, some finite entry.
    pub finite: bool,
    /// `|max| + log_sum + 2 ln C + growth(C) + 4`: the row's lse is good to `ε·scale`.
    pub scale: f64,
}

impl RowStats {
    pub fn of(x: &[f64]) -> Self {
        let finite = x.iter().all(|v| !v.is_nan() && *v != f64::INFINITY) && x.iter().any(|v| v.is_finite());
        let max = x.iter().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let max = if max.is_finite() { max } else { 0.0 };
        let log_sum = x.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        let c = x.len();
        let scale = max.abs() + log_sum.abs() + 2.0 * (c as f64).ln() + growth(c) + 4.0;
        Self { max, log_sum, finite, scale }
    }

    pub fn lse(&self) -> f64 {
        self.max + self.log_sum
    }

    /// The tolerance of the log-probability of an entry `x`.
    pub fn log_prob_tol(&self, x: f64) -> f64 {
        K * EPS * (x.abs() + self.scale)
    }

    /// The relative tolerance of the probability of an entry `x` (log-probability `lp`).
    pub fn prob_rel_tol(&self, x: f64, lp: f64) -> f64 {
        self.log_prob_tol(x) + K * EPS * (3.0 + 2.0 * lp.abs())
    }
}

/// One value per element of `shape`, from each row's values.
fn per_element(shape: Shape, mut row_tol: impl FnMut(usize, &mut dyn FnMut(usize, f64))) -> Vec<f64> {
    let mut tol = vec![0.0; shape.len()];
    for r in 0..shape.loss_rows() {
        row_tol(r, &mut |c, t| tol[shape.at(r, c)] = t);
    }
    tol
}

/// log-softmax of `x`.
pub fn log_softmax(x: &[f32], shape: Shape) -> Vec<f64> {
    per_element(shape, |r, set| {
        let row = shape.row(x, r);
        let st = RowStats::of(&row);
        for (c, &v) in row.iter().enumerate() {
            set(c, st.log_prob_tol(v));
        }
    })
}

/// softmax of `x`.
pub fn softmax(x: &[f32], shape: Shape) -> Vec<f64> {
    per_element(shape, |r, set| {
        let row = shape.row(x, r);
        let st = RowStats::of(&row);
        for (c, &v) in row.iter().enumerate() {
            let lp = v - st.lse();
            let p = lp.exp();
            set(c, if p > 0.0 { p * st.prob_rel_tol(v, lp) + FLUSH } else { FLUSH });
        }
    })
}

/// How far the partial sums of `terms` may reach, whatever order a kernel adds them in:
/// the larger of `|Σ terms|` (terms of one sign climb all the way to it) and `‖terms‖₂`
/// (terms of mixed signs random-walk to about that). A sum's rounding is `growth(n)` ulps
/// of it; `growth` already bounds the random walk with room, so it takes a safety factor
/// of 2 (`SUM_K`), not `K`.
fn partial_sum_reach(terms: impl Iterator<Item = f64> + Clone) -> f64 {
    let sum: f64 = terms.clone().sum();
    let squares: f64 = terms.map(|t| t * t).sum();
    sum.abs().max(squares.sqrt())
}

/// The backward of log-softmax from its output `y` and upstream `dy`:
/// `dx = dy − exp(y)·Σdy`. The sum is good to `growth(C)` ulps of its partial sums' reach,
/// `exp(y)` to `3 + 2|y|` ulps, the difference to one rounding of its terms.
pub fn log_softmax_backward(y: &[f32], dy: &[f32], shape: Shape) -> Vec<f64> {
    per_element(shape, |r, set| {
        let (y, dy) = (shape.row(y, r), shape.row(dy, r));
        let sum: f64 = dy.iter().sum();
        let sum_err = growth(shape.classes) * partial_sum_reach(dy.iter().copied());
        for c in 0..shape.classes {
            let p = y[c].exp();
            let (rounded, summed) =
                if p > 0.0 { (p * sum.abs() * (3.0 + 2.0 * y[c].abs()), p * sum_err) } else { (0.0, 0.0) };
            set(c, K * EPS * (dy[c].abs() + rounded) + SUM_K * EPS * summed + FLUSH);
        }
    })
}

/// The backward of softmax from its output `p` and upstream `dy`:
/// `dx = p·(dy − Σ p·dy)`, the sum good to `growth(C)` ulps of its partial sums' reach.
pub fn softmax_backward(p: &[f32], dy: &[f32], shape: Shape) -> Vec<f64> {
    per_element(shape, |r, set| {
        let (p, dy) = (shape.row(p, r), shape.row(dy, r));
        let dot: f64 = p.iter().zip(&dy).map(|(p, d)| p * d).sum();
        let dot_err = growth(shape.classes) * partial_sum_reach(p.iter().zip(&dy).map(|(p, d)| p * d));
        for c in 0..shape.classes {
            set(c, EPS * p[c].abs() * (K * (dy[c].abs() + dot.abs()) + SUM_K * dot_err) + FLUSH);
        }
    })
}

/// The targets of a class-index or probability-target loss.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// One class index per loss row.
    Index(&'a [i32]),
    /// A probability for every element, laid out as the logits.
    Probs(&'a [f32]),
}

/// Tolerances of a class-index or probability-target loss's outputs.
#[derive(Debug, Clone, Default)]
pub struct LossTol {
    /// For the reduced loss (one value) or each row's.
    pub loss: Vec<f64>,
    /// For each element of the gradient.
    pub grad: Vec<f64>,
    /// For each row's log-sum-exp.
    pub lse: Vec<f64>,
}

/// The weight of class `c` (1 without weights).
fn weight(opts: &CrossEntropyOptions, c: usize) -> f64 {
    opts.weight.as_ref().map_or(1.0, |w| f64::from(w[c]))
}

/// The mean's divisor and the upstream gradient of row `r`: `g` as given for `None` and
/// `Sum`, `g / divisor` for `Mean`.
fn upstream(opts: &CrossEntropyOptions, g: &[f32], r: usize, divisor: f64) -> f64 {
    match opts.reduction {
        Reduction::None => f64::from(g[r]),
        Reduction::Sum => f64::from(g[0]),
        Reduction::Mean => f64::from(g[0]) / divisor,
    }
}

/// Reduces per-row tolerances `tol` of rows whose losses have magnitudes `mag` as the
/// op reduces the rows: the sum adds `growth(rows)` ulps of `Σ mag`; the mean divides that
/// by `divisor`, itself a sum good to `growth(rows)` ulps, which adds as much again
/// relative to `|mean| ≤ Σ mag / divisor`.
fn reduce(opts: &CrossEntropyOptions, tol: Vec<f64>, mag: &[f64], divisor: f64) -> Vec<f64> {
    let rows = tol.len();
    let summed = tol.iter().sum::<f64>() + K * EPS * growth(rows) * mag.iter().sum::<f64>();
    match opts.reduction {
        Reduction::None => tol,
        Reduction::Sum => vec![summed],
        Reduction::Mean => vec![2.0 * summed / divisor],
    }
}

/// The soft-capped logits `x' = cap·tanh(x/cap)` of a row, the absolute error of each, and
/// the absolute error of each slope `1 − tanh²`. WGSL's `tanh` inherits `exp`'s
/// `3 + 2|u|` ulps (`u = x/cap`; `tanh` is exactly ±1 in f32 beyond |u| ≈ 9), taken twice
/// for the quotient; the slope's error is `2|t|` times `tanh`'s.
fn capped(row: Vec<f64>, cap: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    if cap == 0.0 {
        let n = row.len();
        return (row, vec![0.0; n], vec![0.0; n]);
    }
    let mut errs = (Vec::with_capacity(row.len()), Vec::with_capacity(row.len()));
    let seen = row
        .into_iter()
        .map(|x| {
            let (u, t) = (x / cap, (x / cap).tanh());
            let t_err = 2.0 * (3.0 + 2.0 * u.abs().min(10.0)) * EPS * t.abs();
            errs.0.push(if x.is_finite() { cap * t_err } else { 0.0 });
            errs.1.push(if x.is_finite() { 2.0 * t.abs() * t_err } else { 0.0 });
            cap * t
        })
        .collect();
    (seen, errs.0, errs.1)
}

/// Cross-entropy of `x` against `targets` with `opts` and upstream `g`, as
/// `cpu::cross_entropy_with_extras` / `cpu::cross_entropy_probs_with_grad` compute it.
///
/// Row loss `l = Σ_c q_c·(lse − x'_c) + z·lse²` over the soft-capped logits `x'`, with the
/// target masses `q` (`(1−ε)·w_t·[c = t] + ε/C·w_c`, or `w_c·((1−ε)·y_c + ε/C)`): each
/// `lse − x'_c` is a log-probability, good to its tolerance plus the cap's error of `x'_c`
/// (and of the largest, through the lse), and the smoothing sum adds `growth(C)` ulps of
/// `Σ q·|lp|`. Gradient `g·(p·(S + 2z·lse) − q)·slope`: `p` good to its relative tolerance,
/// the rest to a few roundings of `p·(S + 2z|lse|) + q`, the slope (≤ 1) to its own error.
/// The mean's divisor adds `growth(rows)` ulps to every gradient element.
pub fn cross_entropy(x: &[f32], targets: Targets<'_>, shape: Shape, opts: &CrossEntropyOptions, g: &[f32]) -> LossTol {
    let (classes, rows) = (shape.classes, shape.loss_rows());
    let (eps, z, cap) = (f64::from(opts.label_smoothing), f64::from(opts.z_loss_scale), f64::from(opts.logit_softcap));
    let ignored = |r: usize| matches!(targets, Targets::Index(t) if t[r] == opts.ignore_index);
    let divisor = match targets {
        Targets::Index(t) => (0..rows).filter(|&r| !ignored(r)).map(|r| weight(opts, t[r] as usize)).sum(),
        Targets::Probs(_) => rows as f64,
    };
    let mut out = LossTol { grad: vec![0.0; if g.is_empty() { 0 } else { shape.len() }], ..Default::default() };
    let (mut row_tol, mut row_mag) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for r in 0..rows {
        let (seen, cap_err, slope_err) = capped(shape.row(x, r), cap);
        let st = RowStats::of(&seen);
        let lse_tol = K * (EPS * st.scale + cap_err.iter().fold(0.0f64, |m, &e| m.max(e)));
        out.lse.push(lse_tol);
        let empty = opts.empty == EmptyPolicy::Zero && seen.iter().all(|&v| v == f64::NEG_INFINITY);
        if ignored(r) || !st.finite || empty {
            // Exactly 0, or non-finite: matched exactly.
            row_tol.push(0.0);
            row_mag.push(0.0);
            continue;
        }
        let q: Vec<f64> = match targets {
            Targets::Index(t) => {
                let t = t[r] as usize;
                (0..classes)
                    .map(|c| {
                        (1.0 - eps) * if c == t { weight(opts, t) } else { 0.0 }
                            + eps / classes as f64 * weight(opts, c)
                    })
                    .collect()
            }
            Targets::Probs(y) => {
                let y = shape.row(y, r);
                (0..classes).map(|c| weight(opts, c) * ((1.0 - eps) * y[c] + eps / classes as f64)).collect()
            }
        };
        let lse = st.lse();
        let log_prob_tol = |c: usize| st.log_prob_tol(seen[c]) + K * cap_err[c] + lse_tol;
        let (mut tol, mut smoothing) = (z * (2.0 * lse.abs() * lse_tol + K * EPS * lse * lse), 0.0);
        for c in 0..classes {
            let lp = seen[c] - lse;
            if q[c] != 0.0 && lp.is_finite() {
                tol += q[c] * log_prob_tol(c);
                smoothing += q[c] * lp.abs();
            }
        }
        row_tol.push(tol + K * EPS * growth(classes) * smoothing);
        row_mag.push(smoothing + z * lse * lse);
        if !out.grad.is_empty() {
            let s: f64 = q.iter().sum::<f64>() + 2.0 * z * lse;
            let s_abs = q.iter().sum::<f64>() + 2.0 * z * lse.abs();
            let g_row = upstream(opts, g, r, divisor).abs();
            let mean = if opts.reduction == Reduction::Mean { growth(rows) } else { 0.0 };
            for c in 0..classes {
                let lp = seen[c] - lse;
                let p = lp.exp();
                let terms = p * s_abs + q[c];
                let rel_p = if p > 0.0 { log_prob_tol(c) + K * EPS * (3.0 + 2.0 * lp.abs()) } else { 0.0 };
                let tol = p * s.abs() * rel_p + K * EPS * terms * (1.0 + mean) + K * terms * slope_err[c];
                out.grad[shape.at(r, c)] = g_row * tol + FLUSH;
            }
        }
    }
    out.loss = reduce(opts, row_tol, &row_mag, divisor);
    out
}

/// NLL of the log-probabilities `lp` against class-index `targets`: row loss `−w_t·lp_t` (one
/// rounding), reduced as cross-entropy's; gradient `−w_t·g` at the target (one rounding, and
/// the mean's divisor's `growth(rows)`).
pub fn nll(lp: &[f32], targets: &[i32], shape: Shape, opts: &CrossEntropyOptions, g: &[f32]) -> LossTol {
    let rows = shape.loss_rows();
    let kept = |r: usize| targets[r] != opts.ignore_index;
    let divisor: f64 = (0..rows).filter(|&r| kept(r)).map(|r| weight(opts, targets[r] as usize)).sum();
    let mag: Vec<f64> = (0..rows)
        .map(|r| {
            if kept(r) {
                (weight(opts, targets[r] as usize) * f64::from(lp[shape.at(r, targets[r] as usize)])).abs()
            } else {
                0.0
            }
        })
        .collect();
    let row_tol: Vec<f64> = mag.iter().map(|m| if m.is_finite() { K * EPS * m } else { 0.0 }).collect();
    let finite: Vec<f64> = mag.iter().map(|m| if m.is_finite() { *m } else { 0.0 }).collect();
    let mut grad = vec![0.0; if g.is_empty() { 0 } else { shape.len() }];
    if !grad.is_empty() {
        let mean = if opts.reduction == Reduction::Mean { growth(rows) } else { 1.0 };
        for r in (0..rows).filter(|&r| kept(r)) {
            let t = targets[r] as usize;
            let value = (weight(opts, t) * upstream(opts, g, r, divisor)).abs();
            grad[shape.at(r, t)] = K * EPS * mean * value + FLUSH;
        }
    }
    LossTol { loss: reduce(opts, row_tol, &finite, divisor), grad, lse: Vec::new() }
}

/// The worst `|got − want| / tol` seen per family over the run (`what` up to its first
/// space), printed at the end so the margins are visible in every log.
static WORST: Mutex<BTreeMap<String, (f64, String)>> = Mutex::new(BTreeMap::new());

/// The worst ratios, by family, with the comparison that gave each.
pub fn worst_ratios() -> BTreeMap<String, (f64, String)> {
    WORST.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// Compares `got` with `want` element by element within `tol` (non-finite values exactly).
/// `Err` names how many elements failed and the worst of them.
pub fn compare(what: &str, got: &[f32], want: &[f32], tol: &[f64]) -> Result<(), String> {
    if got.len() != want.len() || tol.len() != want.len() {
        return Err(format!("{what}: {} values, expected {} (tolerances for {})", got.len(), want.len(), tol.len()));
    }
    let (mut failed, mut worst, mut worst_ratio) = (0usize, None, 0.0f64);
    for (i, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        let ratio = if !g.is_finite() || !w.is_finite() {
            let same = (g.is_nan() && w.is_nan()) || g == w;
            if same { 0.0 } else { f64::INFINITY }
        } else {
            let diff = (f64::from(g) - f64::from(w)).abs();
            if diff == 0.0 { 0.0 } else { diff / t }
        };
        // A NaN ratio (an unusable tolerance) fails too.
        if ratio.is_nan() || ratio > 1.0 {
            failed += 1;
        }
        if ratio > worst_ratio || (ratio.is_nan() && worst.is_none()) {
            worst_ratio = ratio;
            worst = Some(i);
        }
    }
    let family = what.split_whitespace().next().unwrap_or(what).to_string();
    let mut seen = WORST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = seen.entry(family).or_insert((0.0, String::new()));
    if failed == 0 {
        if worst_ratio > entry.0 {
            *entry = (worst_ratio, format!("{what} [{}]", worst.unwrap_or(0)));
        }
        return Ok(());
    }
    let i = worst.unwrap_or(0);
    Err(format!(
        "{what}: {failed} of {} values out of tolerance; worst [{i}]: got {} want {}, |diff| {:e} > tol {:e}",
        want.len(),
        got[i],
        want[i],
        (f64::from(got[i]) - f64::from(want[i])).abs(),
        tol[i]
    ))
}

/// [`compare`], panicking on failure.
#[track_caller]
pub fn assert_within(what: &str, got: &[f32], want: &[f32], tol: &[f64]) {
    if let Err(e) = compare(what, got, want, tol) {
        panic!("{e}");
    }
}

/// Tolerances of the fused linear + cross-entropy op's outputs.
#[derive(Debug, Clone, Default)]
pub struct LinearTol {
    pub loss: Vec<f64>,
    pub grad_hidden: Vec<f64>,
    pub grad_weight: Vec<f64>,
    pub grad_bias: Vec<f64>,
    pub lse: Vec<f64>,
    /// `Σ |terms|` of each ∂h, ∂W and ∂b element (what a near-cancellation hides).
    pub terms: [Vec<f64>; 3],
}

/// The fused op on `tokens × hidden` states `h`, a `vocab × hidden` weight `w` and `bias`.
///
/// Each logit `z = Σ_k h_k·w_k + b` is summed in f32 in blocks: good to `growth(H)` ulps
/// of `S = Σ_k |h_k·w_k| + |b|`, call it `δz` (a −inf bias entry gives −inf exactly).
/// The cross-entropy of the f32 logits has [`cross_entropy`]'s tolerances; a logit error
/// `δz` moves the loss by at most `(2·Σq + 2z·|lse|)·max δz` (the lse and the target
/// terms each move by at most `max δz`) and each gradient entry `g·(p·s − q)` by
/// `|g|·p·s_abs·2·max δz` (its probability's relative error). The products then add, for
/// `∂h = G·W`, `∂W = Gᵀ·h` and `∂b = Σ_t G`: the propagated gradient errors
/// `Σ δG·|factor|`, and `growth(n)` ulps of their terms' magnitudes `Σ |G·factor|` for
/// the `n`-term sums (V for ∂h, the tokens for ∂W and ∂b).
pub fn linear_cross_entropy(
    h: &[f32], w: &[f32], bias: Option<&[f32]>, targets: &[i32], (n, hd, v): (usize, usize, usize),
    opts: &CrossEntropyOptions, g: &[f32],
) -> LinearTol {
    let (mut z, mut dz) = (vec![0.0f64; n * v], vec![0.0f64; n * v]);
    for t in 0..n {
        for c in 0..v {
            let b = bias.map_or(0.0, |b| f64::from(b[c]));
            let (mut sum, mut mag) = (b, b.abs());
            for k in 0..hd {
                let term = f64::from(h[t * hd + k]) * f64::from(w[c * hd + k]);
                sum += term;
                mag += term.abs();
            }
            z[t * v + c] = sum;
            dz[t * v + c] = if sum.is_finite() { K * EPS * growth(hd) * mag } else { 0.0 };
        }
    }
    let x32: Vec<f32> = z.iter().map(|&x| x as f32).collect();
    let shape = Shape::rows(n, v);
    let ce = cross_entropy(&x32, Targets::Index(targets), shape, opts, g);
    let dz_max: Vec<f64> = dz.chunks(v).map(|r| r.iter().fold(0.0f64, |m, &e| m.max(e))).collect();
    let eps = f64::from(opts.label_smoothing);
    let zl = f64::from(opts.z_loss_scale);
    let ignored = |t: usize| targets[t] == opts.ignore_index;
    let divisor: f64 = (0..n).filter(|&t| !ignored(t)).map(|t| weight(opts, targets[t] as usize)).sum();
    let weight_sum: f64 = (0..v).map(|c| weight(opts, c)).sum();
    let mut row_extra = vec![0.0; n];
    let mut grad = vec![0.0; if g.is_empty() { 0 } else { n * v }];
    let mut grad_abs = vec![0.0; grad.len()];
    for t in (0..n).filter(|&t| !ignored(t)) {
        let (seen, _, _) = capped(shape.row(&x32, t), f64::from(opts.logit_softcap));
        let st = RowStats::of(&seen);
        if !st.finite {
            continue;
        }
        let q_t = (1.0 - eps) * weight(opts, targets[t] as usize);
        let q_sum = q_t + eps / v as f64 * weight_sum;
        let s_abs = q_sum + 2.0 * zl * st.lse().abs();
        row_extra[t] = 2.0 * s_abs * dz_max[t];
        if grad.is_empty() {
            continue;
        }
        let g_row = upstream(opts, g, t, divisor).abs();
        for c in 0..v {
            let p = (seen[c] - st.lse()).exp();
            let q = if c == targets[t] as usize { q_t } else { 0.0 } + eps / v as f64 * weight(opts, c);
            grad[t * v + c] = ce.grad[t * v + c] + g_row * p * s_abs * 2.0 * dz_max[t];
            grad_abs[t * v + c] = g_row * (p * s_abs + q);
        }
    }
    let loss_extra: Vec<f64> = match opts.reduction {
        Reduction::None => row_extra,
        Reduction::Sum => vec![row_extra.iter().sum()],
        Reduction::Mean => vec![row_extra.iter().sum::<f64>() / divisor],
    };
    let mut out = LinearTol {
        loss: ce.loss.iter().zip(&loss_extra).map(|(a, b)| a + b).collect(),
        lse: ce.lse.iter().zip(&dz_max).map(|(a, b)| a + b).collect(),
        ..Default::default()
    };
    if grad.is_empty() {
        return out;
    }
    let product = |n_terms: usize, pairs: &mut dyn Iterator<Item = (f64, f64, f64)>| {
        let (mut err, mut mag) = (0.0, 0.0);
        for (d_g, g_abs, factor) in pairs {
            err += d_g * factor.abs();
            mag += g_abs * factor.abs();
        }
        (err + SUM_K * EPS * growth(n_terms) * mag + FLUSH, mag)
    };
    // Each product element's terms: (row of G, class) pairs and the other factor.
    let dh = (0..n * hd).map(|i| {
        let (t, k) = (i / hd, i % hd);
        product(v, &mut (0..v).map(|c| (grad[t * v + c], grad_abs[t * v + c], f64::from(w[c * hd + k]))))
    });
    let (dh, dh_terms): (Vec<f64>, Vec<f64>) = dh.unzip();
    let dw = (0..v * hd).map(|i| {
        let (c, k) = (i / hd, i % hd);
        product(n, &mut (0..n).map(|t| (grad[t * v + c], grad_abs[t * v + c], f64::from(h[t * hd + k]))))
    });
    let (dw, dw_terms): (Vec<f64>, Vec<f64>) = dw.unzip();
    let (db, db_terms): (Vec<f64>, Vec<f64>) =
        (0..v).map(|c| product(n, &mut (0..n).map(|t| (grad[t * v + c], grad_abs[t * v + c], 1.0)))).unzip();
    out.grad_hidden = dh;
    out.grad_weight = dw;
    out.grad_bias = db;
    out.terms = [dh_terms, dw_terms, db_terms];
    out
}
