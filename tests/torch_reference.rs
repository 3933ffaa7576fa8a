//! The CPU twins (and the GPU ops) against PyTorch's own results: tests/data/torch_cases.txt
//! was written by tests/data/make_torch_cases.py with torch in float64 (autograd gradients).

mod common;

use common::{assert_close, assert_gradient, gpu};
use wgpu_loss::{CrossEntropyOptions, Reduction, cpu};

struct Case {
    name: String,
    op: String,
    rows: usize,
    classes: usize,
    opts: CrossEntropyOptions,
    logits: Vec<f32>,
    targets: Vec<i32>,
    grad_output: Vec<f32>,
    loss: Vec<f32>,
    grad: Vec<f32>,
}

fn floats(line: &str, key: &str) -> Vec<f32> {
    let rest = line
        .strip_prefix(key)
        .unwrap_or_else(|| panic!("expected `{key}`, got {line:?}"));
    rest.split_whitespace()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("bad number {v:?}")))
        .collect()
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/torch_cases.txt");
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(7)
        .map(|c| {
            let head: Vec<&str> = c[0].split_whitespace().collect();
            assert_eq!(head[0], "case");
            let mut opts = CrossEntropyOptions::default();
            opts.reduction = match head[5] {
                "none" => Reduction::None,
                "sum" => Reduction::Sum,
                _ => Reduction::Mean,
            };
            opts.ignore_index = head[6].parse().unwrap();
            opts.label_smoothing = head[7].parse().unwrap();
            let weight = floats(c[3], "weight");
            opts.weight = (head[8] == "1").then_some(weight);
            Case {
                name: head[1].to_string(),
                op: head[2].to_string(),
                rows: head[3].parse().unwrap(),
                classes: head[4].parse().unwrap(),
                opts,
                logits: floats(c[1], "logits"),
                targets: c[2]
                    .strip_prefix("targets")
                    .unwrap()
                    .split_whitespace()
                    .map(|v| v.parse().unwrap())
                    .collect(),
                grad_output: floats(c[4], "grad_output"),
                loss: floats(c[5], "loss"),
                grad: floats(c[6], "grad"),
            }
        })
        .collect()
}

/// The CPU twins agree with PyTorch to f32 precision (they compute in f64 and round once),
/// including every non-finite value exactly.
#[test]
fn cpu_twins_match_pytorch() {
    let cases = cases();
    assert!(cases.len() >= 33, "only {} cases", cases.len());
    for c in cases {
        let (loss, grad) = match c.op.as_str() {
            "cross_entropy" => {
                cpu::cross_entropy_with_grad(&c.logits, &c.targets, c.rows, c.classes, &c.opts, &c.grad_output).unwrap()
            }
            _ => (
                cpu::nll_loss(&c.logits, &c.targets, c.rows, c.classes, &c.opts).unwrap(),
                cpu::nll_loss_grad(&c.targets, c.rows, c.classes, &c.opts, &c.grad_output).unwrap(),
            ),
        };
        assert_close(&format!("{} loss", c.name), &loss, &c.loss, 1e-6, 1e-6);
        assert_close(&format!("{} grad", c.name), &grad, &c.grad, 1e-6, 1e-6);
    }
}

/// The GPU agrees with PyTorch within the GPU tests' stated tolerances.
#[test]
fn gpu_matches_pytorch() {
    for c in cases() {
        let (loss, grad) = match c.op.as_str() {
            "cross_entropy" => gpu()
                .cross_entropy_with_grad(&c.logits, &c.targets, c.rows, c.classes, &c.opts, &c.grad_output)
                .unwrap(),
            _ => (
                gpu()
                    .nll_loss(&c.logits, &c.targets, c.rows, c.classes, &c.opts)
                    .unwrap(),
                gpu()
                    .nll_loss_grad(&c.targets, c.rows, c.classes, &c.opts, &c.grad_output)
                    .unwrap(),
            ),
        };
        common::assert_loss(&format!("{} loss", c.name), &loss, &c.loss, &c.logits, c.rows, &c.opts);
        assert_gradient(&format!("{} grad", c.name), &grad, &c.grad);
    }
}
