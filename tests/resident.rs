//! Rows held in registers (shaders/row_resident.wgsl with softmax_resident.wgsl and
//! cross_entropy_resident.wgsl, a workgroup per row; softmax_short.wgsl and
//! cross_entropy_short.wgsl, an invocation per short row): log-softmax, softmax and plain
//! cross-entropy at every slot count and just either side of each, on every
//! row-reduction path and with resident rows turned off, against the f64 CPU twins with
//! the tolerances of tests/common.

mod common;

use std::sync::OnceLock;

use common::{
    Rng, adversarial_rows, assert_elementwise, assert_gradient, assert_loss, assert_softmax_forward, download, gpu,
    gpus, upload,
};
use wgpu_loss::{CrossEntropyOptions, Extras, Gpu, GpuOptions, LossBuffers, Reduction, Workspace, cpu};

/// The shared paths, a 32-wide workgroup-memory tree (as GPUs without subgroups reduce),
/// and the default path with resident rows off (the two-read kernels).
fn paths() -> Vec<&'static Gpu> {
    static MORE: OnceLock<[Gpu; 2]> = OnceLock::new();
    let more = MORE.get_or_init(|| {
        let with = |change: fn(&mut GpuOptions)| {
            let mut opts = GpuOptions::default();
            change(&mut opts);
            Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)
        };
        [
            with(|o| {
                o.subgroups = false;
                o.row_workgroup_size = Some(32);
            }),
            with(|o| o.resident_rows = false),
        ]
    });
    gpus().into_iter().chain(more).collect()
}

/// Short rows of every quad count, full and partial (1 to 32 classes), then classes at
/// each resident capacity (4 × invocations per row × slots, for 8, 16 and 32 invocations
/// and 1 to 32 slots) and a quad either side, so every slot count is run full, one quad
/// short, and one quad over (the next slot count, or the two-read kernels past the last).
fn boundary_classes() -> Vec<usize> {
    let short = [1, 2, 3, 4, 5, 8, 9, 12, 13, 20, 31, 32];
    let mut classes: Vec<usize> = [8, 16, 32]
        .into_iter()
        .flat_map(|wg| (0..6).map(move |k| 4 * wg * (1 << k)))
        .flat_map(|cap| [cap - 4, cap, cap + 4])
        .filter(|&c| c > 32)
        .chain(short)
        .collect();
    classes.sort_unstable();
    classes.dedup();
    classes
}

/// Two batches, each checked with the tolerance its own largest |x| sets: random rows, and
/// rows with ±1e4 and non-finite entries (-inf here and there, one NaN, one +inf, all -inf;
/// the last three are all-NaN rows).
fn batches(rng: &mut Rng, classes: usize) -> [(Vec<f32>, usize); 2] {
    let random = (rng.logits(5 * classes, 20.0), 5);
    let mut rows = adversarial_rows(classes)[..7].to_vec();
    rows.push(
        (0..classes)
            .map(|i| if i == classes - 1 { f32::NAN } else { 1.0 })
            .collect(),
    );
    rows.push(
        (0..classes)
            .map(|i| if i == classes / 3 { f32::INFINITY } else { 1.0 })
            .collect(),
    );
    rows.push(vec![f32::NEG_INFINITY; classes]);
    let n = rows.len();
    [random, (rows.concat(), n)]
}

/// Every boundary class count with both of its batches.
fn cases(rng: &mut Rng) -> Vec<(usize, (Vec<f32>, usize))> {
    boundary_classes()
        .into_iter()
        .flat_map(|c| batches(rng, c).map(|b| (c, b)))
        .collect()
}

/// The per-row log-sum-exp alone of the extra outputs (argmax takes the general kernels).
fn lse_only() -> Extras {
    let mut extras = Extras::default();
    extras.lse = true;
    extras
}

#[test]
fn softmax_at_every_slot_boundary_matches_cpu() {
    let mut rng = Rng::new(41);
    for gpu in paths() {
        for (classes, (x, rows)) in cases(&mut rng) {
            let what = format!("{rows}x{classes} subgroups={}", gpu.uses_subgroups());
            assert_softmax_forward(gpu, &x, rows, classes, &what);
        }
    }
}

/// Plain cross-entropy (what the resident kernels take): every reduction, class weights,
/// an ignored row, an out-of-range-free batch with z-loss, and the per-row lse.
#[test]
fn cross_entropy_at_every_slot_boundary_matches_cpu() {
    let mut rng = Rng::new(42);
    for gpu in paths() {
        for (classes, (x, rows)) in cases(&mut rng) {
            let mut targets = rng.targets(rows, classes);
            targets[1] = -100;
            let weight: Vec<f32> = (0..classes).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect();
            for (k, reduction) in [Reduction::None, Reduction::Sum, Reduction::Mean]
                .into_iter()
                .enumerate()
            {
                let mut opts = CrossEntropyOptions::default();
                opts.reduction = reduction;
                opts.weight = (k != 1).then(|| weight.clone());
                opts.z_loss_scale = if k == 2 { 1e-3 } else { 0.0 };
                let g: Vec<f32> = match reduction {
                    Reduction::None => (0..rows).map(|_| rng.uniform(-2.0, 2.0)).collect(),
                    _ => vec![1.5],
                };
                let what = format!("{rows}x{classes} subgroups={} {reduction:?}", gpu.uses_subgroups());
                let want =
                    cpu::cross_entropy_with_extras(&x, &targets, rows, classes, &opts, lse_only(), Some(&g)).unwrap();
                let got = gpu
                    .cross_entropy_with_extras(&x, &targets, rows, classes, &opts, lse_only(), Some(&g))
                    .unwrap();
                assert_loss(&format!("loss {what}"), &got.loss, &want.loss, &x, rows, &opts);
                assert_gradient(&format!("grad {what}"), &got.grad, &want.grad);
                assert_elementwise(&format!("lse {what}"), &got.lse, &want.lse, &x);
                let loss = gpu.cross_entropy(&x, &targets, rows, classes, &opts).unwrap();
                assert_loss(&format!("forward loss {what}"), &loss, &want.loss, &x, rows, &opts);
            }
        }
    }
}

/// The gradient written over the logits from the registers, at offsets inside a buffer.
#[test]
fn gradient_in_place_from_the_registers() {
    let mut rng = Rng::new(43);
    for gpu in paths() {
        for (rows, classes) in [(4, 1), (50, 10), (6, 32), (5, 36), (9, 1000), (3, 1028)] {
            let x = rng.logits(rows * classes, 9.0);
            let targets = rng.targets(rows, classes);
            let opts = CrossEntropyOptions::default();
            let (want_loss, want_grad) =
                cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
            // The logits start 64 floats into the buffer: a 16-byte-aligned offset.
            let mut padded = vec![7.0f32; 64];
            padded.extend(&x);
            let logits = upload(gpu, &padded);
            let target_buf = upload(gpu, &targets);
            let loss = upload(gpu, &[0.0f32]);
            let buffers = LossBuffers::new(target_buf.slice(..))
                .input(logits.slice(256..))
                .loss(loss.slice(..))
                .grad_in_place();
            let mut enc = gpu.device().create_command_encoder(&Default::default());
            gpu.encode_cross_entropy(&mut enc, &mut Workspace::new(gpu), &buffers, rows, classes, &opts)
                .unwrap();
            gpu.queue().submit([enc.finish()]);
            let what = format!("{rows}x{classes} subgroups={}", gpu.uses_subgroups());
            assert_loss(
                &format!("in-place loss {what}"),
                &download(gpu, &loss, 0, 1),
                &want_loss,
                &x,
                rows,
                &opts,
            );
            let after = download(gpu, &logits, 0, 64 + rows * classes);
            assert_eq!(after[..64], [7.0; 64], "in place {what}: the bytes before the logits");
            assert_gradient(&format!("in-place grad {what}"), &after[64..], &want_grad);
        }
    }
}
