//! The WGSL sources and how a module is put together from them. Each file names what it
//! uses in `//! import <name>` lines at its top: another file (`shared/row_stats`), or a
//! role chosen per variant — `format` (how the logits are read: `shared/format/f32`, `f16`,
//! `bf16` or `f32x4`), `linear_format` (how the linear products read their operands:
//! `linear_cross_entropy/quads` for f32x4, else `linear_cross_entropy/words`) and
//! `row_reduce` (`shared/row_reduce/subgroup` or `workgroup`). A module is its root file
//! after everything it imports, each file once, `enable f16;` first where the f16 format is
//! in; then the slot lines are unrolled.

use std::collections::HashSet;

/// `(name, source)` of each file named, its name being its path under shaders/ without
/// `.wgsl`.
macro_rules! sources {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../shaders/", $name, ".wgsl")))),*]
    };
}

/// Every WGSL file.
const SOURCES: &[(&str, &str)] = sources![
    "shared/common",
    "shared/row_stats",
    "shared/row_resident",
    "shared/row_packed",
    "shared/class_index",
    "shared/row_reduce/subgroup",
    "shared/row_reduce/workgroup",
    "shared/format/f32",
    "shared/format/f32x4",
    "shared/format/f16",
    "shared/format/bf16",
    "softmax/softmax_row",
    "softmax/softmax",
    "softmax/softmax_vec4",
    "softmax/softmax_resident",
    "softmax/softmax_short",
    "softmax/softmax_packed",
    "cross_entropy/cross_entropy",
    "cross_entropy/cross_entropy_vec4",
    "cross_entropy/cross_entropy_resident",
    "cross_entropy/cross_entropy_short",
    "cross_entropy/cross_entropy_packed",
    "nll/nll",
    "reduce/reduce",
    "elementwise/elementwise",
    "linear_cross_entropy/params",
    "linear_cross_entropy/halves",
    "linear_cross_entropy/words",
    "linear_cross_entropy/quads",
    "linear_cross_entropy/linear",
    "linear_cross_entropy/grad_bias",
];

/// The import lines' prefix.
const IMPORT: &str = "//! import ";

/// How a row-wise kernel combines the partial results of one row's invocations (the
/// `row_reduce` role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RowReduce {
    /// Through workgroup memory with barriers (any adapter).
    Workgroup,
    /// With subgroup operations (adapters with `SUBGROUP` of a fixed size).
    Subgroup,
}

/// How a module reads the logits (the `format` role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    F32,
    F16,
    Bf16,
    /// f32 viewed as vec4.
    F32x4,
}

/// The file an import names: itself, or the file a role stands for in this variant.
fn resolve(import: &str, format: Format, reduce: RowReduce) -> &str {
    match import {
        "format" => match format {
            Format::F32 => "shared/format/f32",
            Format::F16 => "shared/format/f16",
            Format::Bf16 => "shared/format/bf16",
            Format::F32x4 => "shared/format/f32x4",
        },
        "linear_format" => match format {
            Format::F32x4 => "linear_cross_entropy/quads",
            _ => "linear_cross_entropy/words",
        },
        "row_reduce" => match reduce {
            RowReduce::Workgroup => "shared/row_reduce/workgroup",
            RowReduce::Subgroup => "shared/row_reduce/subgroup",
        },
        file => file,
    }
}

/// A file's source by name (panics on an unknown name: the files are fixed at build time,
/// and the tests compose every variant).
fn source(name: &str) -> &'static str {
    SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("shaders/{name}.wgsl is imported but not in SOURCES"))
        .1
}

/// The names a file imports, in order; panics on one named twice.
fn imports(name: &str) -> Vec<&'static str> {
    let imports: Vec<&str> = source(name).lines().map_while(|line| line.strip_prefix(IMPORT)).map(str::trim).collect();
    let unique: HashSet<&&str> = imports.iter().collect();
    assert_eq!(unique.len(), imports.len(), "shaders/{name}.wgsl imports a file twice: {imports:?}");
    imports
}

/// The WGSL module of the root file `root`, with `format` and `reduce` for the roles,
/// unrolled for `slots` quads per invocation (see [`unroll_slots`]).
pub(crate) fn compose(root: &str, format: Format, reduce: RowReduce, slots: u32) -> String {
    let mut order = Vec::new();
    visit(root, format, reduce, &mut Vec::new(), &mut order);
    let enable = if order.contains(&"shared/format/f16") { "enable f16;\n" } else { "" };
    let body: Vec<&str> = order.iter().map(|name| source(name)).collect();
    unroll_slots(&format!("{enable}{}", body.join("\n")), slots)
}

/// Appends `name` to `order` after everything it imports, each file once; `path` holds
/// the files being visited, to report a cycle.
fn visit(name: &str, format: Format, reduce: RowReduce, path: &mut Vec<String>, order: &mut Vec<&'static str>) {
    let name = resolve(name, format, reduce);
    if order.contains(&name) {
        return;
    }
    assert!(!path.iter().any(|p| p == name), "shaders import themselves: {} → {name}", path.join(" → "));
    path.push(name.to_string());
    for import in imports(name) {
        visit(import, format, reduce, path, order);
    }
    path.pop();
    let (known, _) = SOURCES.iter().find(|(n, _)| *n == name).expect("checked by source()");
    order.push(known);
}

/// Repeats each line that contains `$s` once per slot, `$s` replaced by 0, 1, …,
/// `slots - 1` (WGSL has no loop unrolling of its own, and a loop over an array of slots
/// would keep them in memory rather than in registers); each run of consecutive lines that
/// contain `$r` as a block once per slot (so a slot's values are loaded just before their
/// uses); and then each line that contains `$j` once per slot likewise (with `$s` or `$r`
/// as well: a tile of slots × slots, rows outer). `$n` becomes the slot count. Other lines
/// are kept as they are.
pub(crate) fn unroll_slots(source: &str, slots: u32) -> String {
    let count = slots.to_string();
    let lines: Vec<String> = source.lines().map(|line| line.replace("$n", &count)).collect();
    let mut out = String::with_capacity(source.len());
    let mut rest = &lines[..];
    while let Some(first) = rest.first() {
        let run = if first.contains("$r") { rest.iter().take_while(|l| l.contains("$r")).count() } else { 1 };
        let copies = if first.contains("$r") { slots } else { 1 };
        for r in 0..copies {
            for line in &rest[..run] {
                let line = line.replace("$r", &r.to_string());
                let rows = if line.contains("$s") { slots } else { 1 };
                for s in 0..rows {
                    let row = line.replace("$s", &s.to_string());
                    let columns = if row.contains("$j") { slots } else { 1 };
                    for j in 0..columns {
                        out.push_str(&row.replace("$j", &j.to_string()));
                        out.push('\n');
                    }
                }
            }
        }
        rest = &rest[run..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::kernels::{Family, Slots};
    use super::*;
    use crate::Precision;
    use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

    fn validate(source: &str, what: &str, capabilities: Capabilities) -> naga::Module {
        let module =
            naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(source)));
        let mut validator = Validator::new(ValidationFlags::all(), capabilities);
        validator.subgroup_stages(ShaderStages::COMPUTE).subgroup_operations(SubgroupOperationSet::all());
        validator.validate(&module).unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(source)));
        module
    }

    /// Every composed variant — each family, row reduction, precision it is built for and
    /// slot count — parses and validates with naga (the version wgpu uses), so a WGSL error
    /// fails `cargo test`, not a user's app; the workgroup variants without the SUBGROUP
    /// capability, so the fallback really uses no subgroup operation.
    #[test]
    fn every_composed_variant_validates_with_naga() {
        for &family in Family::ALL {
            let slots: Vec<u32> = match family.slots() {
                Slots::None => vec![0],
                Slots::PerRow => vec![1, 2, 4, 8, 16, 32],
                Slots::Short => (1..=8).collect(),
                Slots::Classes => (2..=32).step_by(2).collect(),
                Slots::Tile => vec![1, 4],
            };
            for reduce in [RowReduce::Workgroup, RowReduce::Subgroup] {
                for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
                    for &s in &slots {
                        let source = family.source(reduce, precision, s);
                        let what = format!("{family:?}/{reduce:?}/{precision:?}/{s}");
                        let capabilities = match reduce {
                            RowReduce::Subgroup => Capabilities::SUBGROUP | Capabilities::SHADER_FLOAT16,
                            RowReduce::Workgroup => Capabilities::SHADER_FLOAT16,
                        };
                        validate(&source, &what, capabilities);
                    }
                }
            }
        }
    }

    /// Every file under shaders/ is in SOURCES (and every import names a file, else the
    /// validation above panics).
    #[test]
    fn every_shader_file_is_known() {
        fn files(dir: &std::path::Path, under: &str, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_stem().unwrap().to_string_lossy().to_string();
                if path.is_dir() {
                    files(&path, &format!("{under}{name}/"), out);
                } else if path.extension().is_some_and(|e| e == "wgsl") {
                    out.push(format!("{under}{name}"));
                }
            }
        }
        let mut found = Vec::new();
        files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders"), "", &mut found);
        found.sort();
        let mut known: Vec<String> = SOURCES.iter().map(|(n, _)| n.to_string()).collect();
        known.sort();
        assert_eq!(found, known);
    }

    /// Imports resolve depth first, each file once, `enable f16;` first.
    #[test]
    fn imports_come_first_once_each() {
        let source = compose("cross_entropy/cross_entropy_short", Format::F16, RowReduce::Subgroup, 1);
        assert!(source.starts_with("enable f16;\n"));
        let position = |name: &str| source.find(super::source(name).lines().nth(3).unwrap()).unwrap();
        assert!(position("shared/common") < position("shared/row_stats"));
        assert!(position("shared/row_stats") < position("cross_entropy/cross_entropy"));
        assert!(position("cross_entropy/cross_entropy") < position("cross_entropy/cross_entropy_short"));
        assert_eq!(source.matches("struct Params").count(), 1);
        assert!(!compose("nll/nll", Format::F32, RowReduce::Workgroup, 0).contains("enable f16"));
    }

    /// Lines with `$s` repeat once per slot, in order; the others stay as they are.
    #[test]
    fn unroll_slots_repeats_slot_lines() {
        let source = "let a = 1;\nlet x$s = load($su);\nsum += x$s;\nreturn sum;";
        assert_eq!(
            unroll_slots(source, 2),
            "let a = 1;\nlet x0 = load(0u);\nlet x1 = load(1u);\nsum += x0;\nsum += x1;\nreturn sum;\n"
        );
        assert_eq!(unroll_slots(source, 0), "let a = 1;\nreturn sum;\n");
        let tile = "const N = $n;\nc$s_$j = a$s * b$j;\nd$j = 0;";
        assert_eq!(
            unroll_slots(tile, 2),
            "const N = 2;\nc0_0 = a0 * b0;\nc0_1 = a0 * b1;\nc1_0 = a1 * b0;\nc1_1 = a1 * b1;\nd0 = 0;\nd1 = 0;\n"
        );
        let rows = "let a$r = f($r);\nc$r_$j += a$r * b$j;\nend;";
        assert_eq!(
            unroll_slots(rows, 2),
            "let a0 = f(0);\nc0_0 += a0 * b0;\nc0_1 += a0 * b1;\nlet a1 = f(1);\nc1_0 += a1 * b0;\nc1_1 += a1 * b1;\nend;\n"
        );
    }
}
