//! Rows held in registers (shaders/row_resident.wgsl with softmax_resident.wgsl and
//! cross_entropy_resident.wgsl, a workgroup per row; softmax_short.wgsl and
//! cross_entropy_short.wgsl, an invocation per short row; the *_packed.wgsl kernels, one
//! or two rows of an even length per invocation): log-softmax, softmax and plain
//! cross-entropy at every quad count of a short row (1 to 32 classes) and, on each path, at
//! every slot count's capacity for the path's invocations per row and a quad either side
//! (so each slot count runs full, one quad short, and one quad over: the next slot count,
//! or the two-read kernels past the last), against the f64 CPU twins.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use wgpu_loss::{CrossEntropyOptions, Extras, Gpu, LossBuffers, Reduction, Workspace};

use crate::harness::{self, CeCase, Expect, Got, Path, Rng, Shape, adversarial_rows, download, trials, upload};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(per_path: [
        softmax_at_every_slot_boundary_matches_cpu,
        packed_softmax_rows_equal_short_rows,
        cross_entropy_at_every_slot_boundary_matches_cpu,
        gradient_in_place_from_the_registers,
    ], once: [rows_past_one_dispatch_dimension])
}

/// The most quads one invocation holds.
const MAX_SLOTS: usize = 32;

/// Every short row (1 to 32 classes: one to eight quads, full and partial), then the
/// capacity `4 × per_row × slots` of every slot count for `per_row` invocations per row,
/// and a quad either side.
fn boundary_classes(per_row: usize) -> Vec<usize> {
    let mut classes: Vec<usize> = (0..=MAX_SLOTS.ilog2())
        .map(|k| 4 * per_row * (1 << k))
        .flat_map(|cap| [cap - 4, cap, cap + 4])
        .filter(|&c| c > 32)
        .chain(1..=32)
        .collect();
    classes.sort_unstable();
    classes.dedup();
    classes
}

/// Two batches, each checked against its own rows' tolerances: random rows, and rows
/// with ±1e4 and non-finite entries (-inf here and there, one NaN, one +inf, all -inf;
/// the last three are all-NaN rows).
fn batches(rng: &mut Rng, classes: usize) -> [(Vec<f32>, usize); 2] {
    let random = (rng.logits(5 * classes, 20.0), 5);
    let mut rows = adversarial_rows(classes)[..7].to_vec();
    rows.extend(harness::poisoned_rows(classes).split_off(adversarial_rows(classes).len()));
    let n = rows.len();
    [random, (rows.concat(), n)]
}

/// A boundary batch with its expected outputs.
struct Case {
    shape: Shape,
    x: Vec<f32>,
    log_softmax: Expect,
    softmax: Expect,
    /// Plain cross-entropy (what the resident kernels take) per reduction: weights (but
    /// for `sum`), an ignored row, z-loss with `mean`, and the per-row lse.
    losses: Vec<CeCase>,
}

/// The cases for `per_row` invocations per row, built once per width and shared by the
/// paths of that width.
fn cases(per_row: usize) -> &'static [Case] {
    static CASES: OnceLock<Mutex<HashMap<usize, &'static [Case]>>> = OnceLock::new();
    let mut built = CASES.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    built.entry(per_row).or_insert_with(|| {
        let mut rng = Rng::new(41 + per_row as u64);
        let mut cases = Vec::new();
        for classes in boundary_classes(per_row) {
            for (x, rows) in batches(&mut rng, classes) {
                let shape = Shape::rows(rows, classes);
                let mut targets = rng.targets(rows, classes);
                targets[1] = -100;
                let weight: Vec<f32> = (0..classes).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect();
                let losses = [Reduction::None, Reduction::Sum, Reduction::Mean]
                    .into_iter()
                    .enumerate()
                    .map(|(k, reduction)| {
                        let mut opts = CrossEntropyOptions::default();
                        opts.reduction = reduction;
                        opts.weight = (k != 1).then(|| weight.clone());
                        opts.z_loss_scale = if k == 2 { 1e-3 } else { 0.0 };
                        let g: Vec<f32> = match reduction {
                            Reduction::None => (0..rows).map(|_| rng.uniform(-2.0, 2.0)).collect(),
                            _ => vec![1.5],
                        };
                        CeCase::index(shape, x.clone(), targets.clone(), opts, g)
                    })
                    .collect();
                cases.push(Case {
                    log_softmax: harness::checks::log_softmax(&x, shape),
                    softmax: harness::checks::softmax(&x, shape),
                    losses,
                    shape,
                    x,
                });
            }
        }
        Box::leak(cases.into_boxed_slice())
    })
}

/// The cases of `path`'s width whose rows fit its bindings.
fn path_cases(path: &Path) -> impl Iterator<Item = &'static Case> {
    cases(path.gpu.row_workgroup_size() as usize).iter().filter(|c| path.fits(c.shape.classes))
}

fn softmax_at_every_slot_boundary_matches_cpu(path: &'static Path) {
    for case in path_cases(path) {
        let Shape { n, classes, .. } = case.shape;
        let what = format!("{n}x{classes} {}", path.label());
        case.log_softmax.check(&format!("log_softmax {what}"), &path.gpu.log_softmax(&case.x, n, classes).unwrap());
        case.softmax.check(&format!("softmax {what}"), &path.gpu.softmax(&case.x, n, classes).unwrap());
    }
}

/// Rows of an even length ≤ 32 taken in packs (softmax_packed.wgsl, the slice API's
/// aligned buffers; the batch's last odd row on its own) give the same bits as the short
/// kernel, which takes the same rows from one float past a 16-byte boundary.
fn packed_softmax_rows_equal_short_rows(path: &'static Path) {
    let gpu = &path.gpu;
    let mut rng = Rng::new(33);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for classes in (2..=32).step_by(2).filter(|&c| path.fits(c)) {
        let rows = 5;
        let len = rows * classes;
        let x = rng.logits(len, 20.0);
        let mut shifted = vec![0.0f32];
        shifted.extend(&x);
        let input = upload(gpu, &shifted);
        let output = upload(gpu, &vec![0.0f32; 1 + len]);
        let (input, output_slice) = (input.slice(4..), output.slice(4..));
        for log in [true, false] {
            let packed = if log { gpu.log_softmax(&x, rows, classes) } else { gpu.softmax(&x, rows, classes) };
            let encode = if log { Gpu::encode_log_softmax } else { Gpu::encode_softmax };
            let mut enc = gpu.device().create_command_encoder(&Default::default());
            encode(gpu, &mut enc, &mut Workspace::new(gpu), input, output_slice, rows, classes).unwrap();
            gpu.queue().submit([enc.finish()]);
            let short = download(gpu, &output, 4, len);
            assert_eq!(bits(&packed.unwrap()), bits(&short), "log {log}, {rows}x{classes} {}", path.label());
        }
    }
}

fn cross_entropy_at_every_slot_boundary_matches_cpu(path: &'static Path) {
    let mut lse_only = Extras::default();
    lse_only.lse = true;
    for case in path_cases(path).flat_map(|c| &c.losses) {
        let Shape { n, classes, .. } = case.shape;
        let harness::OwnedTargets::Index(targets) = &case.targets else { unreachable!() };
        let what = case.what(&path.label());
        let got = path
            .gpu
            .cross_entropy_with_extras(&case.x, targets, n, classes, &case.opts, lse_only, Some(&case.g))
            .unwrap();
        let outputs = Got { loss: Some(&got.loss), grad: Some(&got.grad), lse: Some(&got.lse), ..Default::default() };
        case.expect.check(&what, outputs);
        let loss = path.gpu.cross_entropy(&case.x, targets, n, classes, &case.opts).unwrap();
        case.expect.check(&format!("forward {what}"), Got::outputs(Some(&loss), None));
    }
}

/// The gradient written over the logits from the registers, at a 16-byte-aligned offset
/// inside a buffer whose other bytes must survive, at every boundary class count.
fn gradient_in_place_from_the_registers(path: &'static Path) {
    let gpu = &path.gpu;
    for case in path_cases(path).filter(|c| c.shape.n == 5) {
        let Shape { n, classes, .. } = case.shape;
        let loss_case = &case.losses[2];
        let harness::OwnedTargets::Index(targets) = &loss_case.targets else { unreachable!() };
        let mut padded = vec![7.0f32; 64];
        padded.extend(&case.x);
        padded.extend([7.0f32; 4]);
        let logits = upload(gpu, &padded);
        let target_buf = upload(gpu, targets);
        let loss = upload(gpu, &[0.0f32]);
        let g = upload(gpu, &loss_case.g);
        let buffers = LossBuffers::new(target_buf.slice(..))
            .input(logits.slice(256..256 + 4 * (n * classes) as u64))
            .loss(loss.slice(..))
            .grad_output(g.slice(..))
            .grad_in_place();
        let mut enc = gpu.device().create_command_encoder(&Default::default());
        gpu.encode_cross_entropy(&mut enc, &mut Workspace::new(gpu), &buffers, n, classes, &loss_case.opts).unwrap();
        gpu.queue().submit([enc.finish()]);
        let what = format!("in place {}", loss_case.what(&path.label()));
        let after = download(gpu, &logits, 0, padded.len());
        assert_eq!(after[..64], [7.0; 64], "{what}: the bytes before the logits");
        assert_eq!(after[64 + n * classes..], [7.0; 4], "{what}: the bytes after the logits");
        let got_loss = download(gpu, &loss, 0, 1);
        let outputs = Got::outputs(Some(&got_loss), Some(&after[64..64 + n * classes]));
        loss_case.expect.check(&what, outputs);
    }
}

/// 65600 rows of 36 classes (held in registers): more workgroups than one dispatch
/// dimension takes (65535), so the rows past it come from the dispatch's y. Per-row losses,
/// the gradient and log-softmax of every row, on the default path.
fn rows_past_one_dispatch_dimension() {
    let (rows, classes) = (65_600, 36);
    let mut rng = Rng::new(65_600);
    let x = rng.logits(rows * classes, 8.0);
    let targets = rng.targets(rows, classes);
    let mut opts = CrossEntropyOptions::default();
    opts.reduction = Reduction::None;
    let g = harness::grad_output(&mut rng, rows, &opts);
    let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets, opts, g);
    case.check_on(harness::matrix().default());
    let gpu = harness::gpu();
    assert!(gpu.recorded_kernels().iter().any(|k| k.starts_with("cross_entropy_forward_resident[")));
    harness::checks::log_softmax(&x, Shape::rows(rows, classes))
        .check("log_softmax 65600 rows", &gpu.log_softmax(&x, rows, classes).unwrap());
}
