//! The burn adapter against the CPU twins (f64 inside) and against burn's own
//! `CrossEntropyLoss`, `cross_entropy_with_logits` and `Linear`, on burn's wgpu device with
//! fusion on, under autodiff.
//!
//! burn does not read `WGPU_BACKEND`, so the device is pinned from it here (`vulkan` or
//! `gl`; unset: burn's automatic choice) and its backend asserted.
//!
//! Tolerances are the core crate's per-element model (`tests/gpu/harness/tol.rs`, shared
//! here by path), derived there from the kernels' arithmetic and proven there to catch a
//! 0.1 % error element by element. Through burn a gradient may take one more rounding
//! (the backward's scaling by the upstream gradient), so every comparison adds 2ε of the
//! expected value; against burn's own losses every tolerance is doubled (burn's own f32
//! error, of the same kind). `tolerances_catch_a_tenth_of_a_percent` checks that this
//! still refuses a 0.1 % error.

#[allow(dead_code)] // The core's tests use all of it; these use the loss families.
#[path = "../../tests/gpu/harness/tol.rs"]
mod tol;

use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{DType, Device, DeviceKind, Int, Tensor, TensorData};
use tol::{EPS, Shape, Targets};
use wgpu_loss::{CrossEntropyOptions, EmptyPolicy, Error, Reduction, Result, cpu};

/// One device for the whole binary, and one test at a time on it.
fn device() -> (MutexGuard<'static, ()>, Device) {
    static LOCK: Mutex<()> = Mutex::new(());
    static DEVICE: OnceLock<Device> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let device = DEVICE.get_or_init(|| {
        let (api, expected) = match std::env::var("WGPU_BACKEND").as_deref() {
            Ok("vulkan") => (WgpuBackend::Vulkan, Some(burn::tensor::wgpu::wgpu::Backend::Vulkan)),
            Ok("gl") => (WgpuBackend::Gl, Some(burn::tensor::wgpu::wgpu::Backend::Gl)),
            _ => (WgpuBackend::Auto, None),
        };
        let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, api).expect("burn's wgpu device");
        let backend = wgpu_loss_burn::gpu(&device).unwrap().adapter_info().backend;
        if let Some(expected) = expected {
            assert_eq!(backend, expected, "burn's device is not on the backend WGPU_BACKEND names");
        }
        eprintln!("burn device on {backend:?}");
        device
    });
    (guard, device.clone())
}

/// Deterministic values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn targets(rows: usize, classes: usize, seed: u64) -> Vec<i32> {
    values(rows, seed, 1.0)
        .iter()
        .map(|v| (((v + 1.0) / 2.0 * classes as f32) as usize).min(classes - 1) as i32)
        .collect()
}

/// Probability targets: each row (a softmax row of `shape`) positive, summing to 1.
fn probs(shape: Shape, seed: u64) -> Vec<f32> {
    let raw: Vec<f32> = values(shape.len(), seed, 1.0).iter().map(|v| (v * 3.0).exp()).collect();
    let mut p = vec![0.0; raw.len()];
    for r in 0..shape.loss_rows() {
        let sum: f32 = (0..shape.classes).map(|c| raw[shape.at(r, c)]).sum();
        (0..shape.classes).for_each(|c| p[shape.at(r, c)] = raw[shape.at(r, c)] / sum);
    }
    p
}

fn floats<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn ints<const D: usize>(data: &[i32], shape: [usize; D], device: &Device) -> Tensor<D, Int> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

/// `tol` with the slack of one more rounding (2ε of each expected value), `times` over.
fn slack(tol: &[f64], want: &[f32], times: f64) -> Vec<f64> {
    tol.iter().zip(want).map(|(t, w)| times * (t + 2.0 * EPS * f64::from(*w).abs())).collect()
}

/// `got` against `want` within `tol` and one more rounding.
#[track_caller]
fn check(what: &str, got: &[f32], want: &[f32], tol: &[f64]) {
    tol::assert_within(what, got, want, &slack(tol, want, 1.0));
}

/// `got` against burn's `theirs`: `tol` and one more rounding, doubled.
#[track_caller]
fn check_burn(what: &str, got: &[f32], theirs: &[f32], tol: &[f64]) {
    tol::assert_within(what, got, theirs, &slack(tol, theirs, 2.0));
}

fn options(reduction: Reduction, weight: Option<Vec<f32>>, smoothing: f32, ignore: i32) -> CrossEntropyOptions {
    let mut o = CrossEntropyOptions::default();
    o.reduction = reduction;
    o.weight = weight;
    o.label_smoothing = smoothing;
    o.ignore_index = ignore;
    o
}

/// The option sets every cross-entropy test runs: each reduction, smoothing, class
/// weights, z-loss, soft-capping and `EmptyPolicy::Zero`.
fn option_sets(classes: usize) -> Vec<CrossEntropyOptions> {
    let weights: Vec<f32> = values(classes, 7, 1.0).iter().map(|v| v + 1.5).collect();
    let mut capped = options(Reduction::None, None, 0.0, -100);
    (capped.z_loss_scale, capped.logit_softcap) = (1e-3, 6.0);
    let mut empty = options(Reduction::Mean, Some(weights.clone()), 0.0, -100);
    (empty.empty, empty.z_loss_scale) = (EmptyPolicy::Zero, 1e-2);
    vec![
        options(Reduction::Mean, None, 0.0, -100),
        options(Reduction::Sum, None, 0.1, -100),
        options(Reduction::None, None, 0.0, -100),
        options(Reduction::Mean, Some(weights), 0.2, -100),
        capped,
        empty,
    ]
}

/// Upstream values for `loss · g` summed: one per row for `None`, else one.
fn upstream(opts: &CrossEntropyOptions, loss_rows: usize) -> Vec<f32> {
    if opts.reduction == Reduction::None { values(loss_rows, 3, 2.0) } else { vec![0.75] }
}

/// Loss and logits gradient through burn's autodiff of `loss_of` on logits `z` of shape
/// `dims`, for upstream values `g` (`loss · g` summed, so `None` scales each row by its own).
fn through_burn<const D: usize>(
    device: &Device, z: &[f32], dims: [usize; D], g: &[f32], loss_of: impl FnOnce(Tensor<D>) -> Result<Tensor<1>>,
) -> (Vec<f32>, Vec<f32>) {
    let x = floats(z, dims, device).require_grad();
    let loss = loss_of(x.clone()).unwrap();
    let grads = (loss.clone() * floats(g, [g.len()], device)).sum().backward();
    (read(loss), read(x.grad(&grads).unwrap()))
}

/// The twin's loss and gradient and their tolerances.
fn twin(
    z: &[f32], targets: Targets<'_>, shape: Shape, opts: &CrossEntropyOptions, g: &[f32],
) -> (Vec<f32>, Vec<f32>, tol::LossTol) {
    let mut opts = opts.clone();
    opts.spatial = shape.spatial;
    let (n, c) = (shape.n, shape.classes);
    let (loss, grad) = match targets {
        Targets::Index(t) => cpu::cross_entropy_with_grad(z, t, n, c, &opts, g),
        Targets::Probs(p) => cpu::cross_entropy_probs_with_grad(z, p, n, c, &opts, g),
    }
    .unwrap();
    (loss, grad, tol::cross_entropy(z, targets, shape, &opts, g))
}

/// Loss and gradient from burn (`got`) against the twin's, within their tolerances.
#[track_caller]
fn check_twin(
    what: &str, got: (Vec<f32>, Vec<f32>), z: &[f32], targets: Targets<'_>, shape: Shape, opts: &CrossEntropyOptions,
    g: &[f32],
) {
    let (want_loss, want_grad, tol) = twin(z, targets, shape, opts, g);
    check(&format!("loss {what}"), &got.0, &want_loss, &tol.loss);
    check(&format!("grad {what}"), &got.1, &want_grad, &tol.grad);
}

/// Logits for `shape` in ±8, with a tie, a row all `-inf` (what `EmptyPolicy` decides),
/// and an ignored row, where the shape has the rows for them.
fn batch(shape: Shape, seed: u64) -> (Vec<f32>, Vec<i32>) {
    let mut z = values(shape.len(), seed, 8.0);
    let mut t = targets(shape.loss_rows(), shape.classes, seed + 1);
    if shape.loss_rows() > 3 && shape.classes > 1 {
        z[shape.at(1, 1)] = z[shape.at(1, 0)];
        (0..shape.classes).for_each(|c| z[shape.at(2, c)] = f32::NEG_INFINITY);
        t[0] = -100;
    }
    (z, t)
}

#[test]
fn cross_entropy_matches_the_twin() {
    let (_lock, device) = device();
    let device = device.autodiff();
    for (rows, classes) in [(1, 1), (3, 7), (33, 257), (64, 1000), (5, 4097)] {
        let shape = Shape::rows(rows, classes);
        let (z, t) = batch(shape, (rows * 31 + classes) as u64);
        for opts in option_sets(classes) {
            let g = upstream(&opts, rows);
            let got = through_burn(&device, &z, [rows, classes], &g, |x| {
                wgpu_loss_burn::cross_entropy(x, ints(&t, [rows], &device), &opts)
            });
            check_twin(&format!("{rows}×{classes} {opts:?}"), got, &z, Targets::Index(&t), shape, &opts, &g);
        }
    }
}

#[test]
fn spatial_cross_entropy_matches_the_twin() {
    let (_lock, device) = device();
    let device = device.autodiff();
    // (N, C, d…) as burn's convolutions lay them out; ranks 3 and 4.
    for (n, classes, d) in [(1, 1, [9, 1]), (2, 5, [3, 4]), (3, 257, [7, 1]), (2, 33, [5, 13])] {
        let shape = Shape::spatial(n, classes, d[0] * d[1]);
        let (z, t) = batch(shape, (n * 7 + classes) as u64);
        for opts in option_sets(classes) {
            let g = upstream(&opts, shape.loss_rows());
            let targets = ints(&t, [n, d[0], d[1]], &device);
            let got = through_burn(&device, &z, [n, classes, d[0], d[1]], &g, |x| {
                wgpu_loss_burn::cross_entropy_spatial(x, targets, &opts)
            });
            check_twin(&format!("{n}×{classes}×{d:?} {opts:?}"), got, &z, Targets::Index(&t), shape, &opts, &g);
        }
    }
    // Rank 3: one spatial dimension.
    let shape = Shape::spatial(4, 6, 10);
    let (z, t) = batch(shape, 3);
    let opts = options(Reduction::None, None, 0.1, -100);
    let g = upstream(&opts, shape.loss_rows());
    let got = through_burn(&device, &z, [4, 6, 10], &g, |x| {
        wgpu_loss_burn::cross_entropy_spatial(x, ints(&t, [4, 10], &device), &opts)
    });
    check_twin("4×6×10", got, &z, Targets::Index(&t), shape, &opts, &g);
}

#[test]
fn probability_targets_match_the_twin() {
    let (_lock, device) = device();
    let device = device.autodiff();
    for (n, classes, spatial) in [(1, 1, 1), (9, 7, 1), (33, 1000, 1), (2, 4097, 1), (3, 5, 8)] {
        let shape = Shape::spatial(n, classes, spatial);
        let (z, _) = batch(shape, (n * 13 + classes) as u64);
        let p = probs(shape, classes as u64);
        for opts in option_sets(classes) {
            let g = upstream(&opts, shape.loss_rows());
            let got = if spatial == 1 {
                through_burn(&device, &z, [n, classes], &g, |x| {
                    wgpu_loss_burn::cross_entropy_probs(x, floats(&p, [n, classes], &device), &opts)
                })
            } else {
                through_burn(&device, &z, [n, classes, spatial], &g, |x| {
                    wgpu_loss_burn::cross_entropy_probs(x, floats(&p, [n, classes, spatial], &device), &opts)
                })
            };
            check_twin(
                &format!("probs {n}×{classes}×{spatial} {opts:?}"),
                got,
                &z,
                Targets::Probs(&p),
                shape,
                &opts,
                &g,
            );
        }
    }
}

#[test]
fn cross_entropy_matches_burn() {
    let (_lock, device) = device();
    let device = device.autodiff();
    let (rows, classes) = (40, 300);
    let shape = Shape::rows(rows, classes);
    let z = values(rows * classes, 11, 6.0);
    let mut t = targets(rows, classes, 5);
    t[3] = 7;
    let weights: Vec<f32> = values(classes, 9, 1.0).iter().map(|v| v + 1.25).collect();
    // (burn's config, ours): the options both have, with the same meaning.
    let cases = [
        (CrossEntropyLossConfig::new(), options(Reduction::Mean, None, 0.0, -100)),
        (CrossEntropyLossConfig::new().with_pad_tokens(Some(vec![7])), options(Reduction::Mean, None, 0.0, 7)),
        (
            CrossEntropyLossConfig::new().with_weights(Some(weights.clone())),
            options(Reduction::Mean, Some(weights), 0.0, -100),
        ),
        (CrossEntropyLossConfig::new().with_smoothing(Some(0.1)), options(Reduction::Mean, None, 0.1, -100)),
    ];
    for (config, opts) in cases {
        let (their_loss, their_grad) = through_burn(&device, &z, [rows, classes], &[1.0], |x| {
            Ok(config.init(&device).forward(x, ints(&t, [rows], &device)))
        });
        let (loss, grad) = through_burn(&device, &z, [rows, classes], &[1.0], |x| {
            wgpu_loss_burn::cross_entropy(x, ints(&t, [rows], &device), &opts)
        });
        let tol = tol::cross_entropy(&z, Targets::Index(&t), shape, &opts, &[1.0]);
        check_burn(&format!("loss against burn {opts:?}"), &loss, &their_loss, &tol.loss);
        check_burn(&format!("grad against burn {opts:?}"), &grad, &their_grad, &tol.grad);
    }
    // Probability targets: burn's `cross_entropy_with_logits` is the mean over rows.
    let p = probs(shape, 12);
    let (their_loss, their_grad) = through_burn(&device, &z, [rows, classes], &[1.0], |x| {
        Ok(burn::tensor::loss::cross_entropy_with_logits(x, floats(&p, [rows, classes], &device)))
    });
    let (loss, grad) = through_burn(&device, &z, [rows, classes], &[1.0], |x| {
        wgpu_loss_burn::cross_entropy_probs(x, floats(&p, [rows, classes], &device), &Default::default())
    });
    let tol = tol::cross_entropy(&z, Targets::Probs(&p), shape, &Default::default(), &[1.0]);
    check_burn("loss against burn's cross_entropy_with_logits", &loss, &their_loss, &tol.loss);
    check_burn("grad against burn's cross_entropy_with_logits", &grad, &their_grad, &tol.grad);
}

/// `weight` (`hidden_size × vocab`, burn's layout) as the twin's `vocab × hidden_size`.
fn transpose<T: Copy>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| m[r * cols + c]).collect()
}

struct LinearCase {
    tokens: usize,
    hidden_size: usize,
    vocab: usize,
    h: Vec<f32>,
    w: Vec<f32>,
    b: Vec<f32>,
    t: Vec<i32>,
}

/// The fused op's outputs: loss, ∂h, ∂W (burn's layout), ∂b.
type LinearOutputs<T> = [Vec<T>; 4];

impl LinearCase {
    fn new(tokens: usize, hidden_size: usize, vocab: usize) -> Self {
        let scale = 2.0 / (hidden_size as f32).sqrt();
        Self {
            tokens,
            hidden_size,
            vocab,
            h: values(tokens * hidden_size, 21, 1.0),
            w: values(hidden_size * vocab, 22, scale),
            b: values(vocab, 23, 0.5),
            t: targets(tokens, vocab, 24),
        }
    }

    /// The twin's outputs for upstream values `g` and their tolerances, in burn's layout
    /// (∂b empty without a bias).
    fn expect(&self, opts: &CrossEntropyOptions, g: &[f32], bias: bool) -> (LinearOutputs<f32>, LinearOutputs<f64>) {
        let (n, k, v) = (self.tokens, self.hidden_size, self.vocab);
        let w = transpose(&self.w, k, v);
        let b = bias.then_some(&self.b[..]);
        let want = cpu::linear_cross_entropy_with_grad(&self.h, &w, b, &self.t, n, k, v, opts, g).unwrap();
        let tol = tol::linear_cross_entropy(&self.h, &w, b, &self.t, (n, k, v), opts, g);
        let want_bias = want.grad_bias.unwrap_or_default();
        let tol_bias = if bias { tol.grad_bias } else { Vec::new() };
        (
            [want.loss, want.grad_hidden, transpose(&want.grad_weight, v, k), want_bias],
            [tol.loss, tol.grad_hidden, transpose(&tol.grad_weight, v, k), tol_bias],
        )
    }
}

/// The fused op's outputs through burn's autodiff for upstream values `g`, from
/// `loss_of(h, W, b)` on tracked parameters (∂b empty without a bias).
fn linear_through_burn(
    device: &Device, case: &LinearCase, bias: bool, g: &[f32],
    loss_of: impl FnOnce(Tensor<2>, Tensor<2>, Option<Tensor<1>>) -> Result<Tensor<1>>,
) -> LinearOutputs<f32> {
    let (n, k, v) = (case.tokens, case.hidden_size, case.vocab);
    let h = floats(&case.h, [n, k], device).require_grad();
    let w = floats(&case.w, [k, v], device).require_grad();
    let b = floats(&case.b, [v], device).require_grad();
    let loss = loss_of(h.clone(), w.clone(), bias.then(|| b.clone())).unwrap();
    let grads = (loss.clone() * floats(g, [g.len()], device)).sum().backward();
    let gb = b.grad(&grads).map(read).unwrap_or_default();
    assert_eq!(gb.is_empty(), !bias, "∂b exactly when there is a bias");
    [read(loss), read(h.grad(&grads).unwrap()), read(w.grad(&grads).unwrap()), gb]
}

const OUTPUTS: [&str; 4] = ["loss", "∂h", "∂W", "∂b"];

#[test]
fn linear_cross_entropy_matches_the_twin() {
    let (_lock, device) = device();
    let device = device.autodiff();
    for (tokens, hidden_size, vocab) in [(1, 1, 1), (7, 33, 257), (65, 64, 1000), (3, 7, 4097)] {
        let case = LinearCase::new(tokens, hidden_size, vocab);
        let mut capped = options(Reduction::Mean, None, 0.1, -100);
        (capped.z_loss_scale, capped.logit_softcap) = (1e-3, 6.0);
        for (opts, bias) in [
            (options(Reduction::Mean, None, 0.0, -100), true),
            (options(Reduction::Sum, None, 0.0, -100), false),
            (options(Reduction::None, None, 0.0, -100), true),
            (capped, true),
        ] {
            let g = if opts.reduction == Reduction::None { values(tokens, 5, 2.0) } else { vec![1.5] };
            let got = linear_through_burn(&device, &case, bias, &g, |h, w, b| {
                wgpu_loss_burn::linear_cross_entropy(h, w, b, ints(&case.t, [tokens], &device), &opts)
            });
            let (want, tol) = case.expect(&opts, &g, bias);
            for (i, name) in OUTPUTS.iter().enumerate() {
                check(
                    &format!("{name} {tokens}×{hidden_size}×{vocab} {opts:?} bias {bias}"),
                    &got[i],
                    &want[i],
                    &tol[i],
                );
            }
        }
    }
}

#[test]
fn linear_cross_entropy_matches_burn_linear() {
    let (_lock, device) = device();
    let device = device.autodiff();
    let (tokens, hidden_size, vocab) = (50, 40, 700);
    let case = LinearCase::new(tokens, hidden_size, vocab);
    let targets = || ints(&case.t, [tokens], &device);
    let theirs = linear_through_burn(&device, &case, true, &[1.0], |h, w, b| {
        let linear = Linear { weight: Param::from_tensor(w), bias: b.map(Param::from_tensor) };
        Ok(CrossEntropyLossConfig::new().init(&device).forward(linear.forward(h), targets()))
    });
    let ours = linear_through_burn(&device, &case, true, &[1.0], |h, w, b| {
        wgpu_loss_burn::linear_cross_entropy(h, w, b, targets(), &CrossEntropyOptions::default())
    });
    let (_, tol) = case.expect(&CrossEntropyOptions::default(), &[1.0], true);
    for (i, name) in OUTPUTS.iter().enumerate() {
        check_burn(&format!("{name} against Linear + CrossEntropyLoss"), &ours[i], &theirs[i], &tol[i]);
    }
}

/// With the slack and the doubling against burn, the comparisons still refuse a 0.1 %
/// error: the largest entry × 1.001 of every output, and individually every element of
/// the losses and of ∂b, at least 95 % of a cross-entropy gradient's (smoothing's and
/// z-loss's `p·S − q` cancel in the rest) and half of the fused op's ∂h and ∂W elements
/// that are not near-cancellations (∂W: 56 %, sums over 65 tokens of terms of either
/// sign; the core crate's tests count them the same way).
#[test]
fn tolerances_catch_a_tenth_of_a_percent() {
    let shape = Shape::rows(64, 1000);
    let (z, t) = (values(64 * 1000, 1, 8.0), targets(64, 1000, 2));
    let mut outputs = Vec::new();
    for opts in option_sets(1000) {
        let g = upstream(&opts, 64);
        let (loss, grad, tol) = twin(&z, Targets::Index(&t), shape, &opts, &g);
        outputs.push((format!("loss {opts:?}"), loss, tol.loss, 1.0));
        outputs.push((format!("grad {opts:?}"), grad, tol.grad, 0.95));
    }
    // The fused op's ∂h, ∂W and ∂b, less their near-cancellations (terms over 6 × the value,
    // as the core's tests count them).
    let case = LinearCase::new(65, 64, 1000);
    let w = transpose(&case.w, 64, 1000);
    let opts = CrossEntropyOptions::default();
    let want = cpu::linear_cross_entropy_with_grad(&case.h, &w, Some(&case.b), &case.t, 65, 64, 1000, &opts, &[1.0]);
    let (want, tol) =
        (want.unwrap(), tol::linear_cross_entropy(&case.h, &w, Some(&case.b), &case.t, (65, 64, 1000), &opts, &[1.0]));
    let grads = [want.grad_hidden, want.grad_weight, want.grad_bias.unwrap()];
    let tols = [tol.grad_hidden, tol.grad_weight, tol.grad_bias];
    for (((name, want), tol), terms) in OUTPUTS[1..].iter().zip(grads).zip(tols).zip(tol.terms) {
        let kept: Vec<usize> = (0..want.len()).filter(|&i| 6.0 * f64::from(want[i]).abs() >= terms[i]).collect();
        let (want, tol) = (kept.iter().map(|&i| want[i]).collect(), kept.iter().map(|&i| tol[i]).collect());
        outputs.push((format!("linear {name}"), want, tol, 0.5));
    }
    outputs.push(("linear loss".into(), want.loss, tol.loss, 1.0));
    for (what, want, tol, share) in outputs {
        let tol = slack(&tol, &want, 2.0);
        let nonzero = want.iter().filter(|w| **w != 0.0 && w.is_finite()).count();
        let caught = want.iter().zip(&tol).filter(|&(w, t)| *w != 0.0 && *t < 1e-3 * f64::from(*w).abs()).count();
        assert!(caught as f64 >= share * nonzero as f64, "{what}: {caught} of {nonzero} elements catch 0.1 %");
        let mut bad = want.clone();
        let k = (0..bad.len()).fold(0, |m, j| if bad[j].abs() > bad[m].abs() { j } else { m });
        bad[k] *= 1.001;
        assert!(tol::compare(&format!("tolerances {what}"), &bad, &want, &tol).is_err(), "{what}: × 1.001 passed");
        eprintln!("{what}: {caught} of {nonzero} elements catch 0.1 %");
    }
}

#[test]
fn out_of_range_targets_are_errors_and_the_device_goes_on() {
    let (_lock, device) = device();
    let logits = floats(&values(12, 3, 1.0), [4, 3], &device);
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0, 1, 3, 2], [4], &device), &Default::default());
    assert!(matches!(err, Err(Error::InvalidTarget { row: 2, value: 3, classes: 3 })), "{err:?}");
    // i64 targets: a value past i32's range stays out of range. Where burn cannot compute
    // in i64 (GL has no 64-bit integers), its failure is an `Err` too, and the device goes on.
    let wide = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1 << 33, 1, 2], [4]), (&device, DType::I64));
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), wide, &Default::default());
    if device.supports_dtype(DType::I64) {
        assert!(matches!(err, Err(Error::InvalidTarget { row: 1, .. })), "{err:?}");
    } else {
        assert!(matches!(err, Err(Error::Device(_))), "{err:?}");
    }
    let ok =
        wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0, 1, 2, 2], [4], &device), &Default::default()).unwrap();
    let want = cpu::cross_entropy(&read(logits), &[0, 1, 2, 2], 4, 3, &Default::default()).unwrap();
    assert!((read(ok)[0] - want[0]).abs() < 1e-5);
}

#[test]
fn bad_arguments_are_errors_naming_them() {
    let (_lock, device) = device();
    let logits = floats(&[0.0; 6], [2, 3], &device);
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0], [1], &device), &Default::default());
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "targets", expected: 2, actual: 1 })), "{err:?}");
    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 2.0;
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0, 1], [2], &device), &opts);
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "label_smoothing", .. })), "{err:?}");
    // (N, C, d…) shapes: targets of the wrong rank or length, a `spatial` the shape contradicts.
    let maps = floats(&[0.0; 24], [2, 3, 4], &device);
    let err =
        wgpu_loss_burn::cross_entropy_spatial(maps.clone(), ints(&[0; 8], [2, 2, 2], &device), &Default::default());
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "targets", .. })), "{err:?}");
    let err = wgpu_loss_burn::cross_entropy_spatial(maps.clone(), ints(&[0; 6], [2, 3], &device), &Default::default());
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "targets", expected: 4, actual: 3 })), "{err:?}");
    let mut spatial = CrossEntropyOptions::default();
    spatial.spatial = 3;
    let err = wgpu_loss_burn::cross_entropy_spatial(maps.clone(), ints(&[0; 8], [2, 4], &device), &spatial);
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "spatial", .. })), "{err:?}");
    let flat = floats(&[0.0; 3], [3], &device);
    let err = wgpu_loss_burn::cross_entropy_probs(flat.clone(), flat, &Default::default());
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "logits", .. })), "{err:?}");
    // Probability targets: their shape, and no gradient asked of them.
    let err =
        wgpu_loss_burn::cross_entropy_probs(maps.clone(), floats(&[0.0; 24], [2, 4, 3], &device), &Default::default());
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "targets", expected: 3, actual: 4 })), "{err:?}");
    let tracked = device.clone().autodiff();
    let p = floats(&[0.5; 6], [2, 3], &tracked).require_grad() * 2.0;
    let zeros = || floats(&[0.0; 6], [2, 3], &tracked);
    let err = wgpu_loss_burn::cross_entropy_probs(zeros(), p.clone(), &Default::default());
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "targets", .. })), "{err:?}");
    let detached = wgpu_loss_burn::cross_entropy_probs(zeros(), p.detach(), &Default::default());
    assert!((read(detached.unwrap())[0] - 3.0 * 3f32.ln()).abs() < 1e-5);
    let w = floats(&[0.0; 8], [4, 2], &device);
    let err = wgpu_loss_burn::linear_cross_entropy(logits, w, None, ints(&[0, 1], [2], &device), &Default::default());
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "weight", expected: 3, actual: 4 })), "{err:?}");
}

#[path = "../examples/digits.rs"]
mod digits;

#[test]
fn an_mlp_trained_with_the_fused_loss_learns_the_digits_as_well_as_with_burns() {
    let (_lock, device) = device();
    let data = digits::digits();
    let fused = digits::train(&device, &data, digits::Loss::Fused, 20);
    let theirs = digits::train(&device, &data, digits::Loss::Burn, 20);
    eprintln!("test accuracy: fused {fused:.4}, burn's {theirs:.4}");
    assert!(fused >= theirs - 0.01, "fused {fused} against burn's {theirs}");
    assert!(fused > 0.9, "fused {fused}");
}

#[test]
fn linear_cross_entropy_runs_where_burns_logits_do_not_fit() {
    let (_lock, device) = device();
    let device = device.autodiff();
    let (tokens, hidden_size, vocab) = (2048, 16, 32000);
    let case = LinearCase::new(tokens, hidden_size, vocab);
    let h = floats(&case.h, [tokens, hidden_size], &device).require_grad();
    let w = floats(&case.w, [hidden_size, vocab], &device).require_grad();
    // burn's logits (262 MB) pass the largest storage binding of the CPU adapters (128 MiB).
    let limit = wgpu_loss_burn::gpu(&device).unwrap().device().limits().max_storage_buffer_binding_size;
    let logits = h.clone().matmul(w.clone());
    let theirs = CrossEntropyLossConfig::new().init(&device).forward(logits, ints(&case.t, [tokens], &device));
    let fits = (tokens * vocab * 4) as u64 <= limit as u64;
    assert_eq!(
        theirs.try_into_data().is_ok(),
        fits,
        "burn's Linear + CrossEntropyLoss with a binding limit of {limit}"
    );
    let loss = wgpu_loss_burn::linear_cross_entropy(
        h.clone(),
        w.clone(),
        None,
        ints(&case.t, [tokens], &device),
        &Default::default(),
    )
    .unwrap();
    let grads = loss.backward();
    let (opts, w_twin) = (CrossEntropyOptions::default(), transpose(&case.w, hidden_size, vocab));
    let want = cpu::linear_cross_entropy(&case.h, &w_twin, None, &case.t, tokens, hidden_size, vocab, &opts).unwrap();
    let tol = tol::linear_cross_entropy(&case.h, &w_twin, None, &case.t, (tokens, hidden_size, vocab), &opts, &[]);
    check("loss 2048 × 16 × 32000", &read(loss), &want, &tol.loss);
    assert_eq!(read(w.grad(&grads).unwrap()).len(), hidden_size * vocab);
}
