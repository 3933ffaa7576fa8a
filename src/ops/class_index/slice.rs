//! The slice API of the class-index ops: host slices in, `Vec<f32>` out, through the same
//! stages as the encode API.

use super::{ClassIndexOp, LossBuffers, Problem};
use crate::error::Result;
use crate::gpu::{BATCH_STATE_BYTES, Gpu, status_to_result};
use crate::options::{ClassTargets, CrossEntropyOptions, Precision, check_len};

/// What a slice-API call of a class-index op wants back.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wanted {
    pub loss: bool,
    pub grad: bool,
    pub lse: bool,
    pub argmax: bool,
    pub accuracy: bool,
}

/// What a slice-API call of a class-index op read back (empty where not wanted).
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub loss: Vec<f32>,
    pub grad: Vec<f32>,
    pub lse: Vec<f32>,
    pub argmax: Vec<f32>,
    pub accuracy: Vec<f32>,
}

/// The input of a slice-API call: its name, its bytes (`None` for NLL's gradient, which
/// reads none), its element count and type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceInput<'d> {
    pub name: &'static str,
    pub bytes: Option<&'d [u8]>,
    pub len: usize,
    pub precision: Precision,
}

impl<'d> SliceInput<'d> {
    /// f32 data.
    pub(crate) fn f32(name: &'static str, data: &'d [f32]) -> Self {
        Self { name, bytes: Some(bytemuck::cast_slice(data)), len: data.len(), precision: Precision::F32 }
    }

    /// No data, only the length its shape needs (NLL's gradient reads no input).
    pub(crate) fn absent(name: &'static str, len: usize) -> Self {
        Self { name, bytes: None, len, precision: Precision::F32 }
    }
}

/// The targets of a slice-API call: class indices, or a probability matrix.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SliceTargets<'t> {
    Classes(&'t [i32]),
    Probs(&'t [f32]),
}

impl Wanted {
    pub(crate) const LOSS: Wanted = Wanted { loss: true, grad: false, lse: false, argmax: false, accuracy: false };
    pub(crate) const GRAD: Wanted = Wanted { loss: false, grad: true, ..Wanted::LOSS };
    pub(crate) const BOTH: Wanted = Wanted { grad: true, ..Wanted::LOSS };
}

/// The slice API of a class-index op against class-index targets (`i32` or `i64`, checked
/// to fit), for `rows`, `classes` and `opts`.
pub(crate) async fn index_slice(
    gpu: &Gpu, op: ClassIndexOp, input: SliceInput<'_>, targets: &(impl ClassTargets + ?Sized),
    (rows, classes, opts): (usize, usize, &CrossEntropyOptions), grad_output: Option<&[f32]>, wanted: Wanted,
) -> Result<Outputs> {
    let targets = &*targets.to_i32(classes)?;
    let problem = Problem::new(op, rows, classes, opts)?;
    class_index_slice(gpu, &problem, input, SliceTargets::Classes(targets), grad_output, wanted).await
}

/// The slice API of the class-index ops: checks the host slices against the (checked)
/// problem, uploads, records through the encode stages and reads back what is wanted
/// together with the batch status, in which the device reports the first out-of-range
/// target.
pub(crate) async fn class_index_slice(
    gpu: &Gpu, problem: &Problem<'_>, input: SliceInput<'_>, targets: SliceTargets<'_>, grad_output: Option<&[f32]>,
    wanted: Wanted,
) -> Result<Outputs> {
    let (loss_rows, classes) = (problem.loss_rows as usize, problem.classes);
    let (target_bytes, per_row): (&[u8], usize) = match targets {
        SliceTargets::Classes(t) => (bytemuck::cast_slice(t), 1),
        SliceTargets::Probs(p) => (bytemuck::cast_slice(p), classes),
    };
    check_len(input.name, input.len, problem.elements() as usize)?;
    check_len("targets", target_bytes.len() / 4, loss_rows * per_row)?;
    if let Some(g) = grad_output {
        check_len("grad_output", g.len(), problem.loss_len() as usize)?;
    }
    // Half-precision data is uploaded in whole 4-byte words.
    let padded: Option<Vec<u8>> = input.bytes.filter(|b| b.len() % 4 != 0).map(|b| {
        let mut v = b.to_vec();
        v.resize(b.len().next_multiple_of(4), 0);
        v
    });
    let mut uploads: Vec<&[u8]> = vec![target_bytes];
    uploads.extend(padded.as_deref().or(input.bytes));
    uploads.extend(grad_output.map(bytemuck::cast_slice));
    let lens = [
        (wanted.loss, problem.loss_len() as usize),
        (wanted.grad, (loss_rows * classes * input.precision.grad_bytes() as usize).div_ceil(4)),
        (wanted.lse, loss_rows),
        (wanted.argmax, loss_rows),
        (wanted.accuracy, 1),
    ];
    let output_lens: Vec<usize> = lens.iter().filter(|(on, _)| *on).map(|&(_, n)| n).collect();
    let state_bytes = if matches!(targets, SliceTargets::Classes(_)) { BATCH_STATE_BYTES } else { 0 };
    let outputs = gpu
        .run_slice(&uploads, &output_lens, state_bytes, |encoder, ws, inputs, outputs| {
            let mut inputs = inputs.iter().copied();
            let mut outputs = outputs.iter().copied();
            let mut buffers =
                LossBuffers::new(inputs.next().expect("targets are always uploaded")).precision(input.precision);
            buffers.input = input.bytes.and_then(|_| inputs.next());
            buffers.grad_output = grad_output.and_then(|_| inputs.next());
            let mut next = |on: bool| if on { outputs.next() } else { None };
            buffers.loss = next(wanted.loss);
            buffers.grad = next(wanted.grad);
            buffers.lse = next(wanted.lse);
            buffers.argmax = next(wanted.argmax);
            buffers.accuracy = next(wanted.accuracy);
            super::encode(gpu, encoder, ws, problem, &buffers)
        })
        .await?;
    let mut outputs = outputs.into_iter();
    let mut take = |on: bool| {
        if on { outputs.next().unwrap_or_default() } else { Vec::new() }
    };
    let result = Outputs {
        loss: take(wanted.loss),
        grad: take(wanted.grad),
        lse: take(wanted.lse),
        argmax: take(wanted.argmax),
        accuracy: take(wanted.accuracy),
    };
    if state_bytes > 0 {
        status_to_result(&outputs.next().unwrap_or_default(), classes)?;
    }
    Ok(result)
}
