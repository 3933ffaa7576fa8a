//! Vocabulary-parallel cross-entropy: a batch whose classes are split across two `Gpu`s
//! (two devices) gives, after merging the shards' partials, the CPU twin's loss and
//! gradient of the whole batch within the cross-entropy tolerances, as the unsplit batch
//! on one device does.

use crate::harness::{CeCase, Got, Rng, Shape, gpu};
use wgpu_loss::{ClassShard, CrossEntropyOptions, Gpu, Reduction, cross_entropy_from_partials, merge_row_partials};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    crate::harness::trials!(once: [sharded_across_two_gpus_matches_the_whole_batch, shard_arguments_are_checked])
}

fn second_gpu() -> &'static Gpu {
    static SECOND: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| Gpu::new().expect("a second device"))
}

/// Columns [from, to) of a rows × classes matrix.
fn columns(x: &[f32], classes: usize, from: usize, to: usize) -> Vec<f32> {
    x.chunks(classes).flat_map(|row| row[from..to].to_vec()).collect()
}

fn sharded_across_two_gpus_matches_the_whole_batch() {
    let mut rng = Rng::new(31);
    let (rows, classes) = (37, 1001);
    let mut x = rng.logits(rows * classes, 8.0);
    x[5 * classes + 700] = f32::NEG_INFINITY;
    x[6 * classes + 10] = 1e4;
    let mut targets = rng.targets(rows, classes);
    targets[3] = -100;
    targets[4] = 999;
    let splits = [0, 300, 301, classes];
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        for (weighted, eps) in [(false, 0.0), (true, 0.1), (false, 0.3)] {
            let mut opts = CrossEntropyOptions::default();
            opts.reduction = reduction;
            opts.label_smoothing = eps;
            opts.weight = weighted.then(|| (0..classes).map(|c| 0.5 + (c % 3) as f32 * 0.5).collect());
            let g = crate::harness::grad_output(&mut rng, rows, &opts);
            let (whole_loss, whole_grad) =
                gpu().cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g).unwrap();

            let shards: Vec<(ClassShard, Vec<f32>, &Gpu)> = splits
                .windows(2)
                .enumerate()
                .map(|(k, w)| {
                    let shard = ClassShard { offset: w[0], classes: w[1] - w[0], total_classes: classes };
                    let device = if k % 2 == 0 { gpu() } else { second_gpu() };
                    (shard, columns(&x, classes, w[0], w[1]), device)
                })
                .collect();
            let partials: Vec<_> = shards
                .iter()
                .map(|(shard, xs, device)| device.cross_entropy_partials(xs, &targets, rows, *shard, &opts).unwrap())
                .collect();
            let views: Vec<&[_]> = partials.iter().map(Vec::as_slice).collect();
            let merged = merge_row_partials(&views).unwrap();
            let loss = cross_entropy_from_partials(&merged, &targets, classes, &opts).unwrap();
            let what = format!("{reduction:?} weighted={weighted} eps={eps}");
            let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets.clone(), opts.clone(), g.clone());
            case.expect.check(&format!("whole {what}"), Got::outputs(Some(&whole_loss), Some(&whole_grad)));

            let mut grad = vec![0.0f32; rows * classes];
            for (shard, xs, device) in &shards {
                let part = device.cross_entropy_shard_grad(xs, &targets, rows, *shard, &opts, &merged, &g).unwrap();
                for (r, row) in part.chunks(shard.classes).enumerate() {
                    grad[r * classes + shard.offset..][..shard.classes].copy_from_slice(row);
                }
            }
            case.expect.check(&format!("sharded {what}"), Got::outputs(Some(&loss), Some(&grad)));
        }
    }
}

fn shard_arguments_are_checked() {
    let opts = CrossEntropyOptions::default();
    let outside = ClassShard { offset: 3, classes: 2, total_classes: 4 };
    assert!(gpu().cross_entropy_partials(&[0.0, 0.0], &[0], 1, outside, &opts).is_err());
    let shard = ClassShard { offset: 0, classes: 2, total_classes: 4 };
    let err = gpu().cross_entropy_partials(&[0.0, 0.0], &[4], 1, shard, &opts).unwrap_err();
    assert_eq!(err, wgpu_loss::Error::InvalidTarget { row: 0, value: 4, classes: 4 });
    assert!(merge_row_partials(&[&[Default::default()], &[]]).is_err());
}
