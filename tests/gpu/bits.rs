//! Bit-exact records of a fixed set of cases on every path of the matrix, for refactors
//! that must not move a bit: `cargo test --release --test gpu -- --ignored bits::` writes
//! the outputs' hashes to the file `$WGPU_LOSS_BITS` if it does not exist yet, and compares
//! with it if it does (one file per adapter: each adapter rounds in its own way).

use std::fmt::Write;

use half::{bf16, f16};
use wgpu_loss::{BceOptions, ClassShard, CrossEntropyOptions, Extras, Gpu, KlDivOptions, Reduction, SoftmaxOp};

use crate::harness::{Rng, matrix, probability_targets, trials};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(ignored: [record_or_compare])
}

/// FNV-1a over the values' bits.
fn hash(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        v.to_bits().to_le_bytes().iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

/// A record line: a case's name and its values.
type Line<'a> = dyn FnMut(String, &[f32]) + 'a;

/// Every case's outputs on `gpu`, one `name hash` line each.
fn record(gpu: &Gpu, path: &str, tiles_fit: bool, out: &mut String) {
    let mut rng = Rng::new(97);
    let mut line = |name: String, values: &[f32]| writeln!(out, "{path} {name} {:016x}", hash(values)).unwrap();
    record_rows(gpu, &mut rng, &mut line);
    record_spatial(gpu, &mut rng, &mut line);
    // The elementwise losses bind whole tiles of 2048 elements: not on the 8 KiB paths.
    if tiles_fit {
        record_elementwise(gpu, &mut rng, &mut line);
    }
}

/// The row-wise ops, the class-index losses and the shard partials on rows of 12 to 131073
/// classes.
fn record_rows(gpu: &Gpu, rng: &mut Rng, line: &mut Line<'_>) {
    for (rows, classes) in [(9, 12), (7, 33), (3, 1000), (2, 1028), (2, 4100), (1, 131_073)] {
        let x = rng.logits(rows * classes, 12.0);
        let dy = rng.logits(rows * classes, 1.0);
        let mut targets = rng.targets(rows, classes);
        targets[rows / 2] = -100;
        let shape = format!("{rows}x{classes}");
        let fits = |gpu: &Gpu| gpu.log_softmax(&x, rows, classes).ok();
        let Some(lp) = fits(gpu) else {
            line(format!("{shape} too large for this path"), &[]);
            continue;
        };
        line(format!("log_softmax {shape}"), &lp);
        line(format!("softmax {shape}"), &gpu.softmax(&x, rows, classes).unwrap());
        line(format!("log_softmax_backward {shape}"), &gpu.log_softmax_backward(&lp, &dy, rows, classes).unwrap());
        let p = gpu.softmax(&x, rows, classes).unwrap();
        line(format!("softmax_backward {shape}"), &gpu.softmax_backward(&p, &dy, rows, classes).unwrap());
        record_class_index(gpu, rng, line, (&x, &lp, &targets), rows, classes);
        if classes > 4 {
            let shard = ClassShard { offset: 2, classes: classes - 4, total_classes: classes };
            let columns: Vec<f32> = x.chunks(classes).flat_map(|r| r[2..classes - 2].to_vec()).collect();
            let t: Vec<i32> = targets.iter().map(|&t| if t == -100 { 2 } else { t }).collect();
            let opts = CrossEntropyOptions::default();
            let partials = gpu.cross_entropy_partials(&columns, &t, rows, shard, &opts).unwrap();
            // Every field of every partial, in the order they are declared.
            let fields = format!("{partials:?}");
            line(format!("partials {shape}"), &fields.bytes().map(f32::from).collect::<Vec<_>>());
        }
    }
}

/// Cross-entropy in four option sets (with every extra, probability targets, NLL on the
/// log-probabilities `lp`, bf16 and f16 logits) on one batch.
fn record_class_index(
    gpu: &Gpu, rng: &mut Rng, line: &mut Line<'_>, (x, lp, targets): (&[f32], &[f32], &[i32]), rows: usize,
    classes: usize,
) {
    let shape = format!("{rows}x{classes}");
    for k in 0..4 {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = [Reduction::None, Reduction::Sum, Reduction::Mean, Reduction::Mean][k];
        opts.label_smoothing = [0.0, 0.1, 0.0, 0.2][k];
        opts.weight = (k >= 2).then(|| (0..classes).map(|c| 0.5 + (c % 3) as f32).collect());
        (opts.z_loss_scale, opts.logit_softcap) = [(0.0, 0.0), (1e-3, 0.0), (0.0, 0.0), (1e-2, 15.0)][k];
        let g: Vec<f32> = if k == 0 { rng.logits(rows, 2.0) } else { vec![1.5] };
        let what = format!("{shape} options {k}");
        let extras = Extras::all();
        let out = gpu.cross_entropy_with_extras(x, targets, rows, classes, &opts, extras, Some(&g)).unwrap();
        line(format!("cross_entropy loss {what}"), &out.loss);
        line(format!("cross_entropy grad {what}"), &out.grad);
        line(format!("cross_entropy lse {what}"), &out.lse);
        let argmax: Vec<f32> = out.argmax.iter().map(|&a| f32::from_bits(a as u32)).collect();
        line(format!("cross_entropy argmax {what}"), &argmax);
        line(format!("cross_entropy accuracy {what}"), &out.accuracy.into_iter().collect::<Vec<_>>());
        line(format!("cross_entropy forward {what}"), &gpu.cross_entropy(x, targets, rows, classes, &opts).unwrap());
        let y = probability_targets(rng, rows, classes);
        let (loss, grad) = gpu.cross_entropy_probs_with_grad(x, &y, rows, classes, &opts, &g).unwrap();
        line(format!("cross_entropy_probs {what}"), &[loss, grad].concat());
        opts.z_loss_scale = 0.0;
        opts.logit_softcap = 0.0;
        let t: Vec<i32> = targets.iter().map(|&t| if t == -100 { 0 } else { t }).collect();
        let mut nll = opts.clone();
        nll.label_smoothing = 0.0;
        line(format!("nll_loss {what}"), &gpu.nll_loss(lp, &t, rows, classes, &nll).unwrap());
        line(format!("nll_loss_grad {what}"), &gpu.nll_loss_grad(&t, rows, classes, &nll, &g).unwrap());
        let as_bf16: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let (loss, grad) = gpu.cross_entropy_with_grad_half(&as_bf16, &t, rows, classes, &opts, &g).unwrap();
        line(format!("cross_entropy bf16 {what}"), &[loss, grad].concat());
        if gpu.device().features().contains(wgpu::Features::SHADER_F16) {
            let as_f16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            let (loss, grad) = gpu.cross_entropy_with_grad_half(&as_f16, &t, rows, classes, &opts, &g).unwrap();
            let grad: Vec<f32> = grad.iter().map(|h| h.to_f32()).collect();
            line(format!("cross_entropy f16 {what}"), &[loss, grad].concat());
        }
    }
}

/// Softmax, log-softmax and cross-entropy over dim 1 of an `(N, C, d)` batch.
fn record_spatial(gpu: &Gpu, rng: &mut Rng, line: &mut Line<'_>) {
    let (n, c, d) = (2, 21, 9);
    let x = rng.logits(n * c * d, 6.0);
    for op in [SoftmaxOp::LogSoftmax, SoftmaxOp::Softmax] {
        line(format!("{op:?} spatial"), &gpu.softmax_spatial(op, &x, None, n, c, d).unwrap());
    }
    let mut opts = CrossEntropyOptions::default();
    opts.spatial = d;
    let t = rng.targets(n * d, c);
    let (loss, grad) = gpu.cross_entropy_with_grad(&x, &t, n, c, &opts, &[1.0]).unwrap();
    line("cross_entropy spatial".into(), &[loss, grad].concat());
}

/// Every elementwise loss with its gradient.
fn record_elementwise(gpu: &Gpu, rng: &mut Rng, line: &mut Line<'_>) {
    let len = 3001;
    let (a, b) = (rng.logits(len, 3.0), rng.logits(len, 3.0));
    let p: Vec<f32> = (0..len).map(|_| rng.uniform(0.01, 0.99)).collect();
    let g = [0.5];
    let bce = BceOptions::default();
    let both = |r: wgpu_loss::Result<(Vec<f32>, Vec<f32>)>| {
        let (l, g) = r.unwrap();
        [l, g].concat()
    };
    line("mse".into(), &both(gpu.mse_loss_with_grad(&a, &b, len, Reduction::Mean, &g)));
    line("l1".into(), &both(gpu.l1_loss_with_grad(&a, &b, len, Reduction::Sum, &g)));
    line("rmse".into(), &both(gpu.rmse_loss_with_grad(&a, &b, len, &g)));
    line("smooth_l1".into(), &both(gpu.smooth_l1_loss_with_grad(&a, &b, len, Reduction::Mean, 0.5, &g)));
    line("huber".into(), &both(gpu.huber_loss_with_grad(&a, &b, len, Reduction::Mean, 0.7, &g)));
    line("bce".into(), &both(gpu.binary_cross_entropy_with_grad(&p, &p, len, &bce, &g)));
    line("bce_with_logits".into(), &both(gpu.binary_cross_entropy_with_logits_with_grad(&a, &p, len, &bce, &g)));
    let lq: Vec<f32> = a.iter().map(|v| -v.abs()).collect();
    line("kl_div".into(), &both(gpu.kl_div_with_grad(&lq, &p, len, 1, &KlDivOptions::default(), &g)));
}

/// Writes the record of every path to `$WGPU_LOSS_BITS`, or compares with it.
fn record_or_compare() {
    let file = std::env::var("WGPU_LOSS_BITS").expect("set WGPU_LOSS_BITS to the record's file");
    let mut now = String::new();
    // The record holds no linear case: the linear entries would repeat the default's.
    for path in matrix().paths().filter(|p| !p.is_linear_form()) {
        record(&path.gpu, path.name, path.fits(2048), &mut now);
    }
    match std::fs::read_to_string(&file) {
        Err(_) => {
            std::fs::write(&file, &now).unwrap();
            eprintln!("recorded {} lines to {file}", now.lines().count());
        }
        Ok(before) => {
            let moved: Vec<String> = before
                .lines()
                .zip(now.lines())
                .filter(|(b, n)| b != n)
                .map(|(b, n)| format!("  was {b}\n  now {n}"))
                .collect();
            assert_eq!(before.lines().count(), now.lines().count(), "the record has another set of cases");
            assert!(
                moved.is_empty(),
                "{} of {} outputs moved:\n{}",
                moved.len(),
                now.lines().count(),
                moved.join("\n")
            );
            eprintln!("all {} outputs bit-identical to {file}", now.lines().count());
        }
    }
}
