//! Every GPU test of the crate in one binary: one device, one link, one declared matrix of
//! paths (`harness::paths`) that each family's tests run over. After a whole run, a coverage
//! check fails unless every kernel the crate can record on this backend, at every resident
//! slot count, was recorded by some test; then the worst error/tolerance ratio of each
//! family is printed. Tests that destroy a device or lower its limits live in
//! tests/faults.rs, with devices of their own.
//!
//! `cargo test --release --test gpu -- <filter>` runs some trials (no coverage verdict then);
//! `-- --ignored` runs the soak; `PROPTEST_CASES` sets the property tests' case count.

mod harness;

mod bits;
mod breadth;
mod cross_entropy;
mod elementwise;
mod encode_api;
mod errors;
mod half;
mod linear_cross_entropy;
mod load;
mod nll;
mod partials;
mod properties;
mod resident;
mod scale;
mod softmax;
mod tolerances;
mod torch_reference;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = libtest_mimic::Arguments::from_args();
    let gpu = harness::gpu();
    // wgpu's GL backend runs a submission's commands inside `queue.submit`, holding the GL
    // context, and a GL call on another thread panics after waiting 6 s for it ("Could not
    // lock adapter context"); a cold shader cache compiles inside the first submissions
    // (the fused linear op's first call: about 7 s on llvmpipe). So on GL the trials run
    // one at a time.
    if gpu.adapter_info().backend == wgpu::Backend::Gl {
        args.test_threads = Some(1);
    }
    eprintln!(
        "GPU tests on {} ({:?}, {:?}): {} paths",
        gpu.adapter_info().name,
        gpu.adapter_info().backend,
        gpu.adapter_info().device_type,
        harness::matrix().paths().count()
    );
    let trials = [
        harness::tests(),
        bits::tests(),
        tolerances::tests(),
        softmax::tests(),
        nll::tests(),
        cross_entropy::tests(),
        breadth::tests(),
        half::tests(),
        resident::tests(),
        scale::tests(),
        encode_api::tests(),
        errors::tests(),
        elementwise::tests(),
        properties::tests(),
        partials::tests(),
        linear_cross_entropy::tests(),
        torch_reference::tests(),
        load::tests(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let whole_run = harness::coverage::is_whole_run(&args);
    let conclusion = libtest_mimic::run(&args, trials);
    let covered = !whole_run || harness::coverage::check();
    if !args.list {
        println!("worst |error| / tolerance by family:");
        for (family, (ratio, what)) in harness::tol::worst_ratios() {
            let what: String = what.chars().take(160).collect();
            println!("    {family:<24} {ratio:.3}  ({what})");
        }
    }
    if conclusion.has_failed() || !covered { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
