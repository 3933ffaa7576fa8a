//! Half-precision logits: bf16 on every adapter, f16 (logits and gradient) where the
//! adapter has SHADER_F16, against the f64 CPU twin run on the same, exactly widened,
//! values. Whole rows, one invocation per row, split rows and odd-sized chunks.

mod common;

use std::sync::OnceLock;

use common::{
    Rng, adversarial_rows, assert_close, assert_gradient, assert_loss, gpu, gpus, grad_output, option_sets, upload,
};
use half::{bf16, f16};
use wgpu_loss::{CrossEntropyOptions, Gpu, GpuOptions, LossBuffers, Precision, Workspace, cpu};

/// The shared paths plus rows split into 40-class segments and batches chunked at 8 KiB
/// (so chunks start at odd elements, inside a word of two halves).
fn all_paths() -> &'static [(&'static str, Gpu)] {
    static PATHS: OnceLock<Vec<(&'static str, Gpu)>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let with = |segment_classes: u32, max_binding_size: Option<u64>| {
            let mut opts = GpuOptions::default();
            opts.segment_classes = segment_classes;
            opts.max_binding_size = max_binding_size;
            Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)
        };
        vec![("split", with(40, None)), ("split + chunked", with(40, Some(8 << 10)))]
    })
}

fn every_gpu() -> Vec<(String, &'static Gpu)> {
    let shared = gpus().into_iter().enumerate().map(|(i, g)| (format!("shared {i}"), g));
    shared
        .chain(all_paths().iter().map(|(n, g)| (n.to_string(), g)))
        .collect()
}

fn has_f16(gpu: &Gpu) -> bool {
    gpu.device().features().contains(wgpu::Features::SHADER_F16)
}

/// f16 gradients against the CPU's f32 ones: one f16 rounding (2^-11 relative) on top of
/// the f32 tolerance, and f16's subnormal spacing (6e-8) near 0.
fn assert_f16_gradient(what: &str, got: &[f16], want: &[f32]) {
    let got: Vec<f32> = got.iter().map(|h| h.to_f32()).collect();
    let max = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    assert_close(what, &got, want, 1e-5 * max + 6e-8, 1e-3);
}

#[test]
fn bf16_and_f16_logits_match_cpu() {
    let mut rng = Rng::new(51);
    for (path, gpu) in every_gpu() {
        for (rows, classes) in [(1, 1), (7, 3), (33, 31), (9, 257), (5, 1001)] {
            let raw = rng.logits(rows * classes, 10.0);
            let mut targets = rng.targets(rows, classes);
            targets[rows / 2] = -100;
            let as_bf16: Vec<bf16> = raw.iter().map(|&v| bf16::from_f32(v)).collect();
            let as_f16: Vec<f16> = raw.iter().map(|&v| f16::from_f32(v)).collect();
            for opts in option_sets(classes, targets[0]) {
                let targets = common::targets_for(&opts, &targets);
                let g = grad_output(&mut rng, rows, &opts);
                let what = format!("{path} {rows}x{classes} {opts:?}");
                let widened: Vec<f32> = as_bf16.iter().map(|h| h.to_f32()).collect();
                let (want_loss, want_grad) =
                    cpu::cross_entropy_with_grad(&widened, &targets, rows, classes, &opts, &g).unwrap();
                let (loss, grad) = gpu
                    .cross_entropy_with_grad_half(&as_bf16, &targets, rows, classes, &opts, &g)
                    .unwrap();
                assert_loss(&format!("bf16 loss {what}"), &loss, &want_loss, &widened, rows, &opts);
                assert_gradient(&format!("bf16 grad {what}"), &grad, &want_grad);
                let loss = gpu
                    .cross_entropy_half(&as_bf16, &targets, rows, classes, &opts)
                    .unwrap();
                assert_loss(
                    &format!("bf16 loss only {what}"),
                    &loss,
                    &want_loss,
                    &widened,
                    rows,
                    &opts,
                );

                let widened: Vec<f32> = as_f16.iter().map(|h| h.to_f32()).collect();
                let result = gpu.cross_entropy_with_grad_half(&as_f16, &targets, rows, classes, &opts, &g);
                if !has_f16(gpu) {
                    let e = result.unwrap_err().to_string();
                    assert!(e.contains("SHADER_F16"), "{e}");
                    continue;
                }
                let (want_loss, want_grad) =
                    cpu::cross_entropy_with_grad(&widened, &targets, rows, classes, &opts, &g).unwrap();
                let (loss, grad) = result.unwrap();
                assert_loss(&format!("f16 loss {what}"), &loss, &want_loss, &widened, rows, &opts);
                assert_f16_gradient(&format!("f16 grad {what}"), &grad, &want_grad);
            }
        }
    }
}

/// ±inf, NaN, ties, denormals and (bf16) 1e30 logits, f16's extremes ±65504.
#[test]
fn adversarial_half_logits() {
    let mut rng = Rng::new(52);
    for (path, gpu) in every_gpu() {
        for classes in [2, 33, 300] {
            let rows = adversarial_rows(classes);
            let n = rows.len();
            let mut raw: Vec<f32> = rows.concat();
            raw[0] = 1e30; // far beyond f16, within bf16 (and sums of it within f32)
            let targets: Vec<i32> = (0..n).map(|r| (r % classes) as i32).collect();
            for opts in option_sets(classes, -7) {
                let g = grad_output(&mut rng, n, &opts);
                let what = format!("{path} {classes} {opts:?}");
                let as_bf16: Vec<bf16> = raw.iter().map(|&v| bf16::from_f32(v)).collect();
                let widened: Vec<f32> = as_bf16.iter().map(|h| h.to_f32()).collect();
                let (want_loss, want_grad) =
                    cpu::cross_entropy_with_grad(&widened, &targets, n, classes, &opts, &g).unwrap();
                let (loss, grad) = gpu
                    .cross_entropy_with_grad_half(&as_bf16, &targets, n, classes, &opts, &g)
                    .unwrap();
                assert_loss(&format!("bf16 loss {what}"), &loss, &want_loss, &widened, n, &opts);
                assert_gradient(&format!("bf16 grad {what}"), &grad, &want_grad);
                if has_f16(gpu) {
                    let as_f16: Vec<f16> = raw.iter().map(|&v| f16::from_f32(v.clamp(-65504.0, 65504.0))).collect();
                    let widened: Vec<f32> = as_f16.iter().map(|h| h.to_f32()).collect();
                    let (want_loss, want_grad) =
                        cpu::cross_entropy_with_grad(&widened, &targets, n, classes, &opts, &g).unwrap();
                    let (loss, grad) = gpu
                        .cross_entropy_with_grad_half(&as_f16, &targets, n, classes, &opts, &g)
                        .unwrap();
                    assert_loss(&format!("f16 loss {what}"), &loss, &want_loss, &widened, n, &opts);
                    assert_f16_gradient(&format!("f16 grad {what}"), &grad, &want_grad);
                }
            }
        }
    }
}

/// The encode API: bf16 logits from a byte offset of 4 (element 2), probability targets
/// too; half precision refused for NLL and in place; the same bits run to run.
#[test]
fn encode_api_half_precision() {
    let gpu = gpu();
    let mut rng = Rng::new(53);
    let (rows, classes) = (11, 37);
    let raw = rng.logits(rows * classes, 6.0);
    let halves: Vec<bf16> = [bf16::ZERO, bf16::ZERO]
        .into_iter()
        .chain(raw.iter().map(|&v| bf16::from_f32(v)))
        .collect();
    let mut words = bytemuck::cast_slice::<bf16, u8>(&halves).to_vec();
    words.resize(words.len().next_multiple_of(4), 0);
    let widened: Vec<f32> = halves[2..].iter().map(|h| h.to_f32()).collect();
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let (want_loss, want_grad) =
        cpu::cross_entropy_with_grad(&widened, &targets, rows, classes, &opts, &[1.0]).unwrap();
    let logits = upload(gpu, &words);
    let target_buf = upload(gpu, &targets);
    let loss = upload(gpu, &[0f32]);
    let grad = upload(gpu, &vec![0f32; rows * classes]);
    let mut ws = Workspace::new(gpu);
    let buffers = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(4..))
        .loss(loss.slice(..))
        .grad(grad.slice(..))
        .precision(Precision::Bf16);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    gpu.encode_cross_entropy(&mut encoder, &mut ws, &buffers, rows, classes, &opts)
        .unwrap();
    gpu.queue().submit([encoder.finish()]);
    let got_loss = common::download(gpu, &loss, 0, 1);
    let got_grad = common::download(gpu, &grad, 0, rows * classes);
    assert_loss("encode bf16 loss", &got_loss, &want_loss, &widened, rows, &opts);
    assert_gradient("encode bf16 grad", &got_grad, &want_grad);

    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let e = gpu
        .encode_nll_loss(&mut encoder, &mut ws, &buffers, rows, classes, &opts)
        .unwrap_err();
    assert!(e.to_string().contains("precision"), "{e}");
    let in_place = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(..))
        .grad_in_place()
        .precision(Precision::Bf16);
    let e = gpu
        .encode_cross_entropy(&mut encoder, &mut ws, &in_place, rows, classes, &opts)
        .unwrap_err();
    assert!(e.to_string().contains("precision"), "{e}");
    // Too few halves for the shape.
    let short = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(..8))
        .loss(loss.slice(..))
        .precision(Precision::Bf16);
    assert!(
        gpu.encode_cross_entropy(&mut encoder, &mut ws, &short, rows, classes, &opts)
            .is_err()
    );
}
