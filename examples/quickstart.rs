//! The smallest useful program: cross-entropy loss and gradient of one batch on the GPU,
//! checked against the f64 CPU twin, first with the slice API, then with the encode API
//! on the program's own device buffers.
//!
//! ```text
//! cargo run --release --example quickstart
//! WGPU_BACKEND=gl cargo run --release --example quickstart   # llvmpipe, no GPU needed
//! ```

use std::error::Error;

use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Workspace, cpu};

const ROWS: usize = 4;
const CLASSES: usize = 5;

/// Row 2 is ignored (its target is `ignore_index`, -100 by default).
#[rustfmt::skip]
const LOGITS: [f32; ROWS * CLASSES] = [
     2.0, 1.0,  0.1, -1.0,  0.5,
     0.3, 2.5, -0.7,  0.0,  1.2,
    -1.5, 0.2,  0.9,  3.0, -0.4,
     1.0, 1.0,  1.0,  1.0,  1.0,
];
const TARGETS: [i32; ROWS] = [0, 1, -100, 4];

/// GPU results must be within `ABS + REL·|cpu|` of the f64 CPU twin.
const ABS: f32 = 1e-5;
const REL: f32 = 1e-4;

fn main() -> Result<(), Box<dyn Error>> {
    let gpu = Gpu::new()?;
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}, driver: {}), subgroups: {}",
        info.name,
        info.backend,
        info.device_type,
        format!("{} {}", info.driver, info.driver_info).trim(),
        gpu.uses_subgroups()
    );

    let mut opts = CrossEntropyOptions::default(); // reduction mean, ignore_index -100
    opts.label_smoothing = 0.1;
    let grad_output = [1.0]; // d(loss)/d(loss): one value for sum and mean
    println!("\n{ROWS} rows x {CLASSES} classes, targets {TARGETS:?}, label_smoothing {}, mean", opts.label_smoothing);

    let (cpu_loss, cpu_grad) = cpu::cross_entropy_with_grad(&LOGITS, &TARGETS, ROWS, CLASSES, &opts, &grad_output)?;
    print_result("cpu (f64 twin)", &cpu_loss, &cpu_grad);

    // Slice API: host slices in, host vectors out (upload, run, read back in one call).
    let (loss, grad) = gpu.cross_entropy_with_grad(&LOGITS, &TARGETS, ROWS, CLASSES, &opts, &grad_output)?;
    print_result("gpu, slice API", &loss, &grad);
    check("slice API", (&loss, &grad), (&cpu_loss, &cpu_grad))?;

    // Encode API: the op is recorded into our encoder on our buffers; submitting and
    // reading back are ours to do.
    let (loss, grad) = encode_api(&gpu, &opts)?;
    print_result("gpu, encode API", &loss, &grad);
    check("encode API", (&loss, &grad), (&cpu_loss, &cpu_grad))?;
    Ok(())
}

/// Cross-entropy with the encode API on device buffers this program owns.
fn encode_api(gpu: &Gpu, opts: &CrossEntropyOptions) -> Result<(Vec<f32>, Vec<f32>), Box<dyn Error>> {
    let device = gpu.device();
    let storage = wgpu::BufferUsages::STORAGE;
    let init = |label, contents: &[u8]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage: storage })
    };
    let logits = init("logits", bytemuck::cast_slice(&LOGITS));
    let targets = init("targets", bytemuck::cast_slice(&TARGETS));
    let output = |label, bytes| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: storage | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    };
    let loss_bytes = 4; // one f32: reduction mean
    let grad_bytes = (ROWS * CLASSES * 4) as u64;
    let loss = output("loss", loss_bytes);
    let grad = output("grad", grad_bytes);

    // A training loop keeps the workspace and records into it once per submission.
    let mut workspace = Workspace::new(gpu);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("quickstart") });
    let buffers = LossBuffers::new(targets.slice(..)).input(logits.slice(..)).loss(loss.slice(..)).grad(grad.slice(..)); // no grad_output buffer: the upstream gradient is 1.0
    gpu.encode_cross_entropy(&mut encoder, &mut workspace, &buffers, ROWS, CLASSES, opts)?;
    gpu.queue().submit([encoder.finish()]);

    // Targets are checked on the device: an out-of-range one gives its row NaN, and the
    // workspace's status names it. Checking costs a small readback; do it when convenient.
    workspace.check_targets(gpu)?;
    Ok((gpu.read_buffer(loss.slice(..))?, gpu.read_buffer(grad.slice(..))?))
}

/// Prints the largest difference from the CPU twin; `Err` unless every GPU value is
/// within `ABS + REL·|cpu|` of it (non-finite values must match exactly).
fn check(api: &str, gpu: (&[f32], &[f32]), cpu: (&[f32], &[f32])) -> Result<(), String> {
    let mut max_diff = 0.0f32;
    for (what, gpu, cpu) in [("loss", gpu.0, cpu.0), ("grad", gpu.1, cpu.1)] {
        if gpu.len() != cpu.len() {
            return Err(format!("{api}: {what} has {} values, not {}", gpu.len(), cpu.len()));
        }
        for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
            if g == c || (g.is_nan() && c.is_nan()) {
                continue;
            }
            let diff = (g - c).abs();
            let within = diff <= ABS + REL * c.abs(); // false when either is NaN
            if !within {
                return Err(format!("{api}: {what}[{i}] is {g} on the GPU, {c} on the CPU"));
            }
            max_diff = max_diff.max(diff);
        }
    }
    println!("  max |gpu - cpu| = {max_diff:.1e}, within {ABS:e} + {REL:e}·|cpu|: ok");
    Ok(())
}

fn print_result(what: &str, loss: &[f32], grad: &[f32]) {
    println!("\n{what}:\n  loss {:.7}\n  grad", loss[0]);
    for row in grad.chunks(CLASSES) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:+.7}")).collect();
        println!("    [{}]", cells.join(", "));
    }
}
