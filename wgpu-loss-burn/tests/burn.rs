//! The burn adapter against the CPU twins (f64 inside) and against burn's own
//! `CrossEntropyLoss` and `Linear`, on burn's wgpu device with fusion on, under autodiff.
//!
//! burn does not read `WGPU_BACKEND`, so the device is pinned from it here (`vulkan` or
//! `gl`; unset: burn's automatic choice) and its backend asserted.
//!
//! Tolerances, per element, for f32 kernels against the f64 twin (ε = f32's epsilon;
//! γ(n) = n·ε bounds a sum of n terms in any order):
//! * a logit `z = Σ_k h_k·W_kv + b_v` is off by at most `E = γ(H + 1)·Σ|terms|` (0 for
//!   logits given directly); take the row's largest;
//! * `p = exp(z − lse)` by `p·(2E + ε·(|z − lse| + 4))`, so a gradient element
//!   `G = s·w·(p − y)` (s the upstream scale, w the class weight) by `s·w·(that + ε)`;
//! * a row's loss `w·(lse − z_t)` by `w·(2E + ε·(|lse| + |z_t| + 4))`, and a mean or sum of
//!   them by the sum of theirs (divided by the total weight) plus `γ(rows)·Σ|loss|`;
//! * `∂h = G·W`, `∂W = Gᵀ·h`, `∂b = Σ_t G`: each term by its `G`'s bound times the other
//!   factor, plus `γ(terms)` of the sum of absolute terms.
//!
//! Everything is doubled against burn (its own f32 error), and a 0.1 % error is far
//! outside every bound at these shapes (the bounds are checked to be below 1e-4 relative
//! where it matters, by `bounds_are_tight`).

use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{DType, Device, DeviceKind, Int, Tensor, TensorData};
use wgpu_loss::{CrossEntropyOptions, Error, Reduction, cpu};

const EPS: f64 = f32::EPSILON as f64;

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

fn floats<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn ints(data: &[i32], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(data.to_vec(), [data.len()]), device)
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

/// Fails with the first element beyond its bound, plus 4ε of the value itself (the final
/// products and scalings that form it, each rounded once, and the twin's rounding to f32).
fn assert_close(what: &str, actual: &[f32], expected: &[f32], bound: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, ((a, e), b)) in actual.iter().zip(expected).zip(bound).enumerate() {
        let err = (*a as f64 - *e as f64).abs();
        let b = b + 4.0 * EPS * (*e as f64).abs();
        assert!(err <= b, "{what}[{i}]: {a} against {e}: |error| {err:e} > bound {b:e}");
    }
}

/// The f64 quantities the bounds are made of, per row: its log-sum-exp and probabilities.
struct Rows {
    lse: Vec<f64>,
    p: Vec<f64>,
}

fn rows_of(z: &[f64], classes: usize) -> Rows {
    let mut lse = Vec::new();
    let mut p = Vec::new();
    for row in z.chunks(classes) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let l = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        p.extend(row.iter().map(|v| (v - l).exp()));
        lse.push(l);
    }
    Rows { lse, p }
}

/// Bounds on the loss values and on the gradient of the logits `G`, for logits `z` that
/// are each off by at most `e[row]`, with per-row upstream scales `s` (mean folded in).
fn ce_bounds(
    z: &[f64], e: &[f64], t: &[i32], classes: usize, opts: &CrossEntropyOptions, s: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let r = rows_of(z, classes);
    let w = |c: usize| opts.weight.as_ref().map_or(1.0, |w| w[c] as f64);
    let mut row_loss = Vec::new();
    let mut grad = Vec::new();
    for (i, row) in z.chunks(classes).enumerate() {
        let counted = t[i] != opts.ignore_index;
        let wt = if counted { w(t[i] as usize) } else { 0.0 };
        let zt = if counted { row[t[i] as usize].abs() } else { 0.0 };
        row_loss.push(wt * (2.0 * e[i] + EPS * (r.lse[i].abs() + zt + 4.0)) + wt * EPS * (r.lse[i].abs() + zt));
        for (c, v) in row.iter().enumerate() {
            let p = r.p[i * classes + c];
            let pe = p * (2.0 * e[i] + EPS * ((v - r.lse[i]).abs() + 4.0));
            grad.push(s[i].abs() * wt.max(w(c)) * (pe + EPS) * if counted { 1.0 } else { 0.0 });
        }
    }
    let loss = match opts.reduction {
        Reduction::None => row_loss,
        _ => {
            let rows = row_loss.len() as f64;
            let total: f64 = row_loss.iter().sum::<f64>() + (rows + 1.0) * EPS * row_loss.len() as f64;
            let divisor = if opts.reduction == Reduction::Mean {
                t.iter().filter(|&&c| c != opts.ignore_index).map(|&c| w(c as usize)).sum::<f64>()
            } else {
                1.0
            };
            vec![total / divisor * 4.0 + 4.0 * EPS]
        }
    };
    (loss, grad)
}

/// The per-row upstream scale of the gradient for upstream values `g`.
fn scales(opts: &CrossEntropyOptions, t: &[i32], g: &[f32]) -> Vec<f64> {
    let rows = t.len();
    let w =
        |c: i32| if c == opts.ignore_index { 0.0 } else { opts.weight.as_ref().map_or(1.0, |w| w[c as usize] as f64) };
    match opts.reduction {
        Reduction::None => g.iter().map(|&v| v as f64).collect(),
        Reduction::Sum => vec![g[0] as f64; rows],
        Reduction::Mean => vec![g[0] as f64 / t.iter().map(|&c| w(c)).sum::<f64>().max(1.0); rows],
    }
}

fn options(reduction: Reduction, weight: Option<Vec<f32>>, smoothing: f32, ignore: i32) -> CrossEntropyOptions {
    let mut o = CrossEntropyOptions::default();
    o.reduction = reduction;
    o.weight = weight;
    o.label_smoothing = smoothing;
    o.ignore_index = ignore;
    o
}

/// Loss and logits gradient through burn's autodiff for upstream values `g`
/// (`loss · g` summed, so `None` scales each row by its own value).
fn through_burn(
    device: &Device, z: &[f32], t: &[i32], rows: usize, classes: usize, opts: &CrossEntropyOptions, g: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let x = floats(z, [rows, classes], device).require_grad();
    let loss = wgpu_loss_burn::cross_entropy(x.clone(), ints(t, device), opts).unwrap();
    let upstream = floats(g, [g.len()], device);
    let grads = (loss.clone() * upstream).sum().backward();
    (read(loss), read(x.grad(&grads).unwrap()))
}

#[test]
fn cross_entropy_matches_the_twin() {
    let (_lock, device) = device();
    let device = device.autodiff();
    for (rows, classes) in [(1, 1), (3, 7), (33, 257), (64, 1000), (5, 4097)] {
        let z = values(rows * classes, (rows * 31 + classes) as u64, 8.0);
        let mut t = targets(rows, classes, classes as u64);
        t[0] = if rows > 2 { -100 } else { t[0] };
        for opts in [
            options(Reduction::Mean, None, 0.0, -100),
            options(Reduction::Sum, None, 0.1, -100),
            options(Reduction::None, None, 0.0, -100),
            options(Reduction::Mean, Some(values(classes, 7, 1.0).iter().map(|v| v + 1.5).collect()), 0.2, -100),
        ] {
            let g = if opts.reduction == Reduction::None { values(rows, 3, 2.0) } else { vec![0.75] };
            let (loss, grad) = through_burn(&device, &z, &t, rows, classes, &opts, &g);
            let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&z, &t, rows, classes, &opts, &g).unwrap();
            let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            let smoothing = (opts.label_smoothing as f64) * 8.0 * classes as f64 * EPS;
            let (lb, gb) = ce_bounds(&z64, &vec![smoothing; rows], &t, classes, &opts, &scales(&opts, &t, &g));
            let what = format!("{rows}×{classes} {:?} smoothing {}", opts.reduction, opts.label_smoothing);
            assert_close(&format!("loss {what}"), &loss, &want_loss, &lb);
            assert_close(&format!("grad {what}"), &grad, &want_grad, &gb);
        }
    }
}

#[test]
fn cross_entropy_matches_burn() {
    let (_lock, device) = device();
    let device = device.autodiff();
    let (rows, classes) = (40, 300);
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
        let x = floats(&z, [rows, classes], &device).require_grad();
        let theirs = config.init(&device).forward(x.clone(), ints(&t, &device));
        let grads = theirs.backward();
        let (their_loss, their_grad) = (read(theirs), read(x.grad(&grads).unwrap()));
        let (loss, grad) = through_burn(&device, &z, &t, rows, classes, &opts, &[1.0]);
        let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let smoothing = (opts.label_smoothing as f64) * 8.0 * classes as f64 * EPS;
        let (lb, gb) = ce_bounds(&z64, &vec![smoothing; rows], &t, classes, &opts, &scales(&opts, &t, &[1.0]));
        let double = |b: Vec<f64>| b.iter().map(|v| 2.0 * v).collect::<Vec<_>>();
        assert_close(&format!("loss against burn {opts:?}"), &loss, &their_loss, &double(lb));
        assert_close(&format!("grad against burn {opts:?}"), &grad, &their_grad, &double(gb));
    }
}

/// `weight` (`hidden_size × vocab`, burn's layout) as the twin's `vocab × hidden_size`.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
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

    /// f64 logits and each row's logit error bound `γ(H + 1)·max_v Σ|terms|`.
    fn logits(&self, bias: bool) -> (Vec<f64>, Vec<f64>) {
        let (n, k, v) = (self.tokens, self.hidden_size, self.vocab);
        let mut z = vec![0.0; n * v];
        let mut e = vec![0.0f64; n];
        for i in 0..n {
            for c in 0..v {
                let b = if bias { self.b[c] as f64 } else { 0.0 };
                let terms = (0..k).map(|j| self.h[i * k + j] as f64 * self.w[j * v + c] as f64);
                z[i * v + c] = terms.clone().sum::<f64>() + b;
                let abs = terms.map(f64::abs).sum::<f64>() + b.abs();
                e[i] = e[i].max((k + 1) as f64 * EPS * abs);
            }
        }
        (z, e)
    }

    /// Bounds on loss, ∂h, ∂W (burn's layout), ∂b for upstream values `g`.
    fn bounds(&self, opts: &CrossEntropyOptions, g: &[f32], bias: bool) -> [Vec<f64>; 4] {
        let (n, k, v) = (self.tokens, self.hidden_size, self.vocab);
        let (z, e) = self.logits(bias);
        let s = scales(opts, &self.t, g);
        let (loss, gb_logits) = ce_bounds(&z, &e, &self.t, v, opts, &s);
        let r = rows_of(&z, v);
        // |G| itself, for the γ terms.
        let g_abs: Vec<f64> = (0..n * v).map(|i| s[i / v].abs() * (r.p[i] + 1.0)).collect();
        // G[t, v]'s bound plus γ(terms)·|G[t, v]|: one term of a sum of `terms` products.
        let term = |t: usize, c: usize, terms: usize| gb_logits[t * v + c] + terms as f64 * EPS * g_abs[t * v + c];
        let gh = (0..n * k)
            .map(|i| (0..v).map(|c| (self.w[(i % k) * v + c] as f64).abs() * term(i / k, c, v)).sum::<f64>())
            .collect();
        let gw = (0..k * v)
            .map(|i| (0..n).map(|t| (self.h[t * k + i / v] as f64).abs() * term(t, i % v, n)).sum::<f64>())
            .collect();
        let gbias = (0..v).map(|c| (0..n).map(|t| term(t, c, n)).sum::<f64>()).collect();
        [loss, gh, gw, gbias]
    }
}

#[test]
fn linear_cross_entropy_matches_the_twin() {
    let (_lock, device) = device();
    let device = device.autodiff();
    for (tokens, hidden_size, vocab) in [(1, 1, 1), (7, 33, 257), (65, 64, 1000), (3, 7, 4097)] {
        let case = LinearCase::new(tokens, hidden_size, vocab);
        for (reduction, bias) in [(Reduction::Mean, true), (Reduction::Sum, false), (Reduction::None, true)] {
            let opts = options(reduction, None, 0.0, -100);
            let g = if reduction == Reduction::None { values(tokens, 5, 2.0) } else { vec![1.5] };
            let h = floats(&case.h, [tokens, hidden_size], &device).require_grad();
            let w = floats(&case.w, [hidden_size, vocab], &device).require_grad();
            let b = floats(&case.b, [vocab], &device).require_grad();
            let loss = wgpu_loss_burn::linear_cross_entropy(
                h.clone(),
                w.clone(),
                bias.then(|| b.clone()),
                ints(&case.t, &device),
                &opts,
            )
            .unwrap();
            let grads = (loss.clone() * floats(&g, [g.len()], &device)).sum().backward();
            let want = cpu::linear_cross_entropy_with_grad(
                &case.h,
                &transpose(&case.w, hidden_size, vocab),
                bias.then_some(&case.b[..]),
                &case.t,
                tokens,
                hidden_size,
                vocab,
                &opts,
                &g,
            )
            .unwrap();
            let [lb, hb, wb, bb] = case.bounds(&opts, &g, bias);
            let what = format!("{tokens}×{hidden_size}×{vocab} {reduction:?} bias {bias}");
            assert_close(&format!("loss {what}"), &read(loss), &want.loss, &lb);
            assert_close(&format!("∂h {what}"), &read(h.grad(&grads).unwrap()), &want.grad_hidden, &hb);
            let want_w = transpose(&want.grad_weight, vocab, hidden_size);
            assert_close(&format!("∂W {what}"), &read(w.grad(&grads).unwrap()), &want_w, &wb);
            match (b.grad(&grads), want.grad_bias) {
                (Some(got), Some(want)) => assert_close(&format!("∂b {what}"), &read(got), &want, &bb),
                (None, None) => {}
                (got, want) => panic!("∂b {what}: {:?} against {:?}", got.is_some(), want.is_some()),
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
    let linear = || Linear {
        weight: Param::from_tensor(floats(&case.w, [hidden_size, vocab], &device)),
        bias: Some(Param::from_tensor(floats(&case.b, [vocab], &device))),
    };
    let theirs = linear();
    let h = floats(&case.h, [tokens, hidden_size], &device).require_grad();
    let logits = theirs.forward(h.clone());
    let loss = CrossEntropyLossConfig::new().init(&device).forward(logits, ints(&case.t, &device));
    let grads = loss.backward();
    let their = [
        read(loss),
        read(h.grad(&grads).unwrap()),
        read(theirs.weight.val().grad(&grads).unwrap()),
        read(theirs.bias.as_ref().unwrap().val().grad(&grads).unwrap()),
    ];

    let ours = linear();
    let h = floats(&case.h, [tokens, hidden_size], &device).require_grad();
    let loss = wgpu_loss_burn::linear_cross_entropy(
        h.clone(),
        ours.weight.val(),
        ours.bias.as_ref().map(|b| b.val()),
        ints(&case.t, &device),
        &CrossEntropyOptions::default(),
    )
    .unwrap();
    let grads = loss.backward();
    let got = [
        read(loss),
        read(h.grad(&grads).unwrap()),
        read(ours.weight.val().grad(&grads).unwrap()),
        read(ours.bias.as_ref().unwrap().val().grad(&grads).unwrap()),
    ];
    let bounds = case.bounds(&CrossEntropyOptions::default(), &[1.0], true);
    for (((name, got), their), bound) in ["loss", "∂h", "∂W", "∂b"].iter().zip(&got).zip(&their).zip(bounds) {
        let double: Vec<f64> = bound.iter().map(|v| 2.0 * v).collect();
        assert_close(&format!("{name} against Linear + CrossEntropyLoss"), got, their, &double);
    }
}

#[test]
fn bounds_are_tight() {
    // The bounds stay far below a 0.1 % error of the values they bound.
    let case = LinearCase::new(65, 64, 1000);
    let opts = CrossEntropyOptions::default();
    let [loss, ..] = case.bounds(&opts, &[1.0], true);
    let want =
        cpu::linear_cross_entropy(&case.h, &transpose(&case.w, 64, 1000), Some(&case.b), &case.t, 65, 64, 1000, &opts)
            .unwrap();
    assert!(loss[0] < 1e-4 * want[0] as f64, "loss bound {} against loss {}", loss[0], want[0]);
    let z: Vec<f64> = values(64 * 1000, 1, 8.0).iter().map(|&v| v as f64).collect();
    let t = targets(64, 1000, 2);
    let (_, grad) = ce_bounds(&z, &[0.0; 64], &t, 1000, &opts, &[1.0 / 64.0; 64]);
    let (_, want) = cpu::cross_entropy_with_grad(&values(64 * 1000, 1, 8.0), &t, 64, 1000, &opts, &[1.0]).unwrap();
    for (i, &c) in t.iter().enumerate() {
        let k = i * 1000 + c as usize;
        assert!(grad[k] < 1e-4 * (want[k] as f64).abs(), "target gradient bound {} against {}", grad[k], want[k]);
    }
}

#[test]
fn out_of_range_targets_are_errors_and_the_device_goes_on() {
    let (_lock, device) = device();
    let logits = floats(&values(12, 3, 1.0), [4, 3], &device);
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0, 1, 3, 2], &device), &Default::default());
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
    let ok = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0, 1, 2, 2], &device), &Default::default()).unwrap();
    let want = cpu::cross_entropy(&read(logits), &[0, 1, 2, 2], 4, 3, &Default::default()).unwrap();
    assert!((read(ok)[0] - want[0]).abs() < 1e-5);
}

#[test]
fn bad_arguments_are_errors_naming_them() {
    let (_lock, device) = device();
    let logits = floats(&[0.0; 6], [2, 3], &device);
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0], &device), &Default::default());
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "targets", expected: 2, actual: 1 })), "{err:?}");
    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 2.0;
    let err = wgpu_loss_burn::cross_entropy(logits.clone(), ints(&[0, 1], &device), &opts);
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "label_smoothing", .. })), "{err:?}");
    let w = floats(&[0.0; 8], [4, 2], &device);
    let err = wgpu_loss_burn::linear_cross_entropy(logits, w, None, ints(&[0, 1], &device), &Default::default());
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
    let theirs = CrossEntropyLossConfig::new().init(&device).forward(logits, ints(&case.t, &device));
    let fits = (tokens * vocab * 4) as u64 <= limit as u64;
    assert_eq!(
        theirs.try_into_data().is_ok(),
        fits,
        "burn's Linear + CrossEntropyLoss with a binding limit of {limit}"
    );
    let loss =
        wgpu_loss_burn::linear_cross_entropy(h.clone(), w.clone(), None, ints(&case.t, &device), &Default::default())
            .unwrap();
    let grads = loss.backward();
    let want = cpu::linear_cross_entropy(
        &case.h,
        &transpose(&case.w, hidden_size, vocab),
        None,
        &case.t,
        tokens,
        hidden_size,
        vocab,
        &Default::default(),
    )
    .unwrap();
    let opts = CrossEntropyOptions::default();
    let (z, e) = case.logits(false);
    let (lb, _) = ce_bounds(&z, &e, &case.t, vocab, &opts, &scales(&opts, &case.t, &[1.0]));
    assert_close("loss 2048 × 16 × 32000", &read(loss), &want, &lb);
    assert_eq!(read(w.grad(&grads).unwrap()).len(), hidden_size * vocab);
}
