//! Half-precision logits: bf16 on every adapter, f16 (logits and gradient) where the
//! adapter has SHADER_F16 (lavapipe must: its Vulkan run fails without it), against the f64
//! CPU twin run on the same, exactly widened, values, on every path (the chunked ones start
//! chunks at odd elements, inside a word of two halves).

use std::sync::OnceLock;

use half::{bf16, f16};
use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Precision, Workspace};

use crate::harness::{
    CeCase, Expect, Got, OwnedTargets, Path, Rng, Shape, adversarial_rows, download, gpu, grad_output, option_sets,
    targets_for, trials, upload,
};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(
        per_path: [bf16_and_f16_logits_match_cpu, short_half_rows_match_cpu, adversarial_half_logits],
        once: [f16_is_checked_where_it_must_be, encode_api_half_precision]
    )
}

fn has_f16(gpu: &Gpu) -> bool {
    gpu.device().features().contains(wgpu::Features::SHADER_F16)
}

/// lavapipe has SHADER_F16: on Vulkan its absence fails the run, so the f16 checks can
/// never quietly check nothing there. Elsewhere without it, f16 is a clear `Err`.
fn f16_is_checked_where_it_must_be() {
    let gpu = gpu();
    if gpu.adapter_info().backend == wgpu::Backend::Vulkan {
        assert!(has_f16(gpu), "the Vulkan adapter {:?} lacks SHADER_F16", gpu.adapter_info().name);
    }
    if !has_f16(gpu) {
        let e = gpu
            .cross_entropy_with_grad_half(&[f16::ONE; 2], &[0], 1, 2, &CrossEntropyOptions::default(), &[1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHADER_F16"), "{e}");
    }
}

/// f16 gradients: the f32 tolerance plus one f16 rounding (2⁻¹¹ relative) and f16's
/// subnormal spacing (2⁻²⁴) near 0.
fn f16_rounded(expect: &Expect) -> Expect {
    let tol = expect
        .want
        .iter()
        .zip(&expect.tol)
        .map(|(w, t)| t + f64::from(w.abs()) / 2048.0 + 1.0 / 16_777_216.0)
        .collect();
    Expect::new(expect.want.clone(), tol)
}

/// A case on logits already rounded to one half type, with the logits in that type.
struct HalfCase {
    case: CeCase,
    bf16: Vec<bf16>,
    f16: Vec<f16>,
    /// The f16 case (the logits rounded to f16), where they differ from bf16's.
    f16_case: CeCase,
}

impl HalfCase {
    fn new(shape: Shape, raw: &[f32], targets: Vec<i32>, opts: CrossEntropyOptions, g: Vec<f32>) -> Self {
        let as_bf16: Vec<bf16> = raw.iter().map(|&v| bf16::from_f32(v)).collect();
        let as_f16: Vec<f16> = raw.iter().map(|&v| f16::from_f32(v.clamp(-65504.0, 65504.0))).collect();
        let bf: Vec<f32> = as_bf16.iter().map(|h| h.to_f32()).collect();
        let hf: Vec<f32> = as_f16.iter().map(|h| h.to_f32()).collect();
        Self {
            case: CeCase::index(shape, bf, targets.clone(), opts.clone(), g.clone()),
            f16_case: CeCase::index(shape, hf, targets, opts, g),
            bf16: as_bf16,
            f16: as_f16,
        }
    }

    fn runs_on(&self, path: &Path) -> bool {
        (path.is_default() || self.case.on_every_path) && path.fits(self.case.shape.classes)
    }

    fn check(&self, path: &Path) {
        let (gpu, what) = (&path.gpu, self.case.what(&path.label()));
        let Shape { n, classes, .. } = self.case.shape;
        let OwnedTargets::Index(targets) = &self.case.targets else { unreachable!() };
        let (opts, g) = (&self.case.opts, &self.case.g);
        let (loss, grad) = gpu.cross_entropy_with_grad_half(&self.bf16, targets, n, classes, opts, g).unwrap();
        self.case.expect.check(&format!("bf16 {what}"), Got::outputs(Some(&loss), Some(&grad)));
        let loss = gpu.cross_entropy_half(&self.bf16, targets, n, classes, opts).unwrap();
        self.case.expect.check(&format!("bf16 loss only {what}"), Got::outputs(Some(&loss), None));
        let result = gpu.cross_entropy_with_grad_half(&self.f16, targets, n, classes, opts, g);
        if !has_f16(gpu) {
            assert!(result.unwrap_err().to_string().contains("SHADER_F16"));
            return;
        }
        let (loss, grad) = result.unwrap();
        let grad: Vec<f32> = grad.iter().map(|h| h.to_f32()).collect();
        let expect = &self.f16_case.expect;
        expect.check(&format!("f16 {what}"), Got::outputs(Some(&loss), None));
        f16_rounded(&expect.grad).check(&format!("f16 grad {what}"), &grad);
        let loss = gpu.cross_entropy_half(&self.f16, targets, n, classes, opts).unwrap();
        expect.check(&format!("f16 loss only {what}"), Got::outputs(Some(&loss), None));
    }
}

fn bf16_and_f16_logits_match_cpu(path: &'static Path) {
    static CASES: OnceLock<Vec<HalfCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(51);
        let mut cases = Vec::new();
        for (rows, classes) in [(1, 1), (7, 3), (33, 31), (9, 257), (5, 1001), (2, 131_073)] {
            let raw = rng.logits(rows * classes, 10.0);
            let mut targets = rng.targets(rows, classes);
            targets[rows / 2] = -100;
            for (k, opts) in option_sets(classes, targets[0]).into_iter().enumerate() {
                let targets = targets_for(&opts, &targets);
                let g = grad_output(&mut rng, rows, &opts);
                let mut case = HalfCase::new(Shape::rows(rows, classes), &raw, targets, opts, g);
                case.case.on_every_path = [0, 5, 6].contains(&k);
                cases.push(case);
            }
        }
        cases
    });
    cases.iter().filter(|c| c.runs_on(path)).for_each(|c| c.check(path));
}

/// Short rows (1 to 32 classes: one to eight quads held by one invocation) in both half
/// types, with the options the short kernels take (no smoothing) and with smoothing.
fn short_half_rows_match_cpu(path: &'static Path) {
    static CASES: OnceLock<Vec<HalfCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(54);
        let mut cases = Vec::new();
        for classes in 1..=32 {
            let rows = 5;
            let raw = rng.logits(rows * classes, 8.0);
            let mut targets = rng.targets(rows, classes);
            targets[2] = -100;
            for (k, opts) in option_sets(classes, -7).into_iter().enumerate().filter(|(k, _)| [0, 5, 6].contains(k)) {
                let g = grad_output(&mut rng, rows, &opts);
                let targets = targets_for(&opts, &targets);
                let mut case = HalfCase::new(Shape::rows(rows, classes), &raw, targets, opts, g);
                case.case.on_every_path = k != 5;
                cases.push(case);
            }
        }
        cases
    });
    cases.iter().filter(|c| c.runs_on(path)).for_each(|c| c.check(path));
}

/// ±inf, NaN, ties, denormals and (bf16) 1e30 logits, f16's extremes ±65504.
fn adversarial_half_logits(path: &'static Path) {
    static CASES: OnceLock<Vec<HalfCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(52);
        let mut cases = Vec::new();
        for classes in [2, 33, 300] {
            let rows = adversarial_rows(classes);
            let n = rows.len();
            let mut raw: Vec<f32> = rows.concat();
            raw[0] = 1e30; // far beyond f16, within bf16 (and sums of it within f32)
            let targets: Vec<i32> = (0..n).map(|r| (r % classes) as i32).collect();
            for (k, opts) in option_sets(classes, -7).into_iter().enumerate() {
                let g = grad_output(&mut rng, n, &opts);
                let mut case = HalfCase::new(Shape::rows(n, classes), &raw, targets.clone(), opts, g);
                case.case.on_every_path = [0, 5, 6].contains(&k);
                cases.push(case);
            }
        }
        cases
    });
    cases.iter().filter(|c| c.runs_on(path)).for_each(|c| c.check(path));
}

/// The encode API: bf16 logits from a byte offset of 4 (element 2); half precision refused
/// for NLL and in place; too few halves for the shape refused.
fn encode_api_half_precision() {
    let gpu = gpu();
    let mut rng = Rng::new(53);
    let (rows, classes) = (11, 37);
    let raw = rng.logits(rows * classes, 6.0);
    let halves: Vec<bf16> =
        [bf16::ZERO, bf16::ZERO].into_iter().chain(raw.iter().map(|&v| bf16::from_f32(v))).collect();
    let mut words = bytemuck::cast_slice::<bf16, u8>(&halves).to_vec();
    words.resize(words.len().next_multiple_of(4), 0);
    let widened: Vec<f32> = halves[2..].iter().map(|h| h.to_f32()).collect();
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let want = CeCase::index(Shape::rows(rows, classes), widened, targets.clone(), opts.clone(), vec![1.0]);
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
    gpu.encode_cross_entropy(&mut encoder, &mut ws, &buffers, rows, classes, &opts).unwrap();
    gpu.queue().submit([encoder.finish()]);
    let got_loss = download(gpu, &loss, 0, 1);
    let got_grad = download(gpu, &grad, 0, rows * classes);
    want.expect.check("encode bf16", Got::outputs(Some(&got_loss), Some(&got_grad)));

    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let e = gpu.encode_nll_loss(&mut encoder, &mut ws, &buffers, rows, classes, &opts).unwrap_err();
    assert!(e.to_string().contains("precision"), "{e}");
    let in_place =
        LossBuffers::new(target_buf.slice(..)).input(logits.slice(..)).grad_in_place().precision(Precision::Bf16);
    let e = gpu.encode_cross_entropy(&mut encoder, &mut ws, &in_place, rows, classes, &opts).unwrap_err();
    assert!(e.to_string().contains("precision"), "{e}");
    // Too few halves for the shape.
    let short =
        LossBuffers::new(target_buf.slice(..)).input(logits.slice(..8)).loss(loss.slice(..)).precision(Precision::Bf16);
    assert!(gpu.encode_cross_entropy(&mut encoder, &mut ws, &short, rows, classes, &opts).is_err());
}
