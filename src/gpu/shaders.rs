//! The WGSL sources and how they are put together: each kernel family's file is
//! prefixed with the shared pieces it uses, so every module is one plain WGSL string.

const COMMON: &str = include_str!("../../shaders/common.wgsl");
const ROW_REDUCE_WORKGROUP: &str = include_str!("../../shaders/row_reduce_workgroup.wgsl");
const ROW_REDUCE_SUBGROUP: &str = include_str!("../../shaders/row_reduce_subgroup.wgsl");
const ROW_STATS: &str = include_str!("../../shaders/row_stats.wgsl");
const CLASS_INDEX: &str = include_str!("../../shaders/class_index.wgsl");
const SOFTMAX: &str = include_str!("../../shaders/softmax.wgsl");
const SOFTMAX_VEC4: &str = include_str!("../../shaders/softmax_vec4.wgsl");
const ROW_RESIDENT: &str = include_str!("../../shaders/row_resident.wgsl");
const SOFTMAX_RESIDENT: &str = include_str!("../../shaders/softmax_resident.wgsl");
const CROSS_ENTROPY_VEC4: &str = include_str!("../../shaders/cross_entropy_vec4.wgsl");
const CROSS_ENTROPY_RESIDENT: &str = include_str!("../../shaders/cross_entropy_resident.wgsl");
const SOFTMAX_SHORT: &str = include_str!("../../shaders/softmax_short.wgsl");
const CROSS_ENTROPY_SHORT: &str = include_str!("../../shaders/cross_entropy_short.wgsl");
const CROSS_ENTROPY: &str = include_str!("../../shaders/cross_entropy.wgsl");
const NLL: &str = include_str!("../../shaders/nll.wgsl");
const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");
const ELEMENTWISE: &str = include_str!("../../shaders/elementwise.wgsl");
const FORMAT_F32: &str = include_str!("../../shaders/formats/f32.wgsl");
const FORMAT_F32X4: &str = include_str!("../../shaders/formats/f32x4.wgsl");
const FORMAT_F16: &str = include_str!("../../shaders/formats/f16.wgsl");
const FORMAT_BF16: &str = include_str!("../../shaders/formats/bf16.wgsl");

use crate::Precision;

/// How a row-wise kernel combines the partial results of one row's invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RowReduce {
    /// Through workgroup memory with barriers (any adapter).
    Workgroup,
    /// With subgroup operations, one subgroup per row (adapters with `SUBGROUP`).
    Subgroup,
}

/// A kernel family: one `.wgsl` file of entry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    Softmax,
    SoftmaxVec4,
    /// Rows held on-chip (shaders/row_resident.wgsl), unrolled per slot count.
    SoftmaxResident,
    CrossEntropy,
    /// Plain rows of f32 logits read as vec4, streamed twice.
    CrossEntropyVec4,
    /// Plain rows of f32 logits held on-chip.
    CrossEntropyResident,
    /// Short rows held by one invocation each, unrolled per slot count.
    SoftmaxShort,
    CrossEntropyShort,
    Nll,
    Reduce,
    Elementwise,
}

impl Family {
    #[cfg(test)]
    pub(crate) const ALL: [Family; 11] = [
        Family::Softmax,
        Family::SoftmaxVec4,
        Family::SoftmaxResident,
        Family::CrossEntropy,
        Family::CrossEntropyVec4,
        Family::CrossEntropyResident,
        Family::SoftmaxShort,
        Family::CrossEntropyShort,
        Family::Nll,
        Family::Reduce,
        Family::Elementwise,
    ];

    /// Whether the family's kernels reduce along rows (and so take the `WG` override).
    pub(crate) fn is_row_wise(self) -> bool {
        matches!(
            self,
            Family::Softmax
                | Family::SoftmaxVec4
                | Family::SoftmaxResident
                | Family::CrossEntropy
                | Family::CrossEntropyVec4
                | Family::CrossEntropyResident
                | Family::SoftmaxShort
                | Family::CrossEntropyShort
        )
    }

    /// Whether the family is built for each [`Precision`] of the logits, not f32 alone.
    pub(crate) fn has_half_variants(self) -> bool {
        matches!(self, Family::CrossEntropy | Family::CrossEntropyShort)
    }

    /// The complete WGSL module of the family for `precision`'s logits and gradients
    /// (the class-index families read them through shaders/formats/*.wgsl), with the
    /// resident families' slots unrolled `slots` times (see [`unroll_slots`]).
    pub(crate) fn source_for(self, reduce: RowReduce, precision: Precision, slots: u32) -> String {
        let format = match precision {
            Precision::F32 => FORMAT_F32,
            Precision::F16 => FORMAT_F16,
            Precision::Bf16 => FORMAT_BF16,
        };
        let enable = if precision == Precision::F16 { "enable f16;" } else { "" };
        let row_reduce = match reduce {
            RowReduce::Workgroup => ROW_REDUCE_WORKGROUP,
            RowReduce::Subgroup => ROW_REDUCE_SUBGROUP,
        };
        // The cross-entropy modules: its kernels over the precision's elements, or over
        // f32 viewed as vec4; each with what the extra kernels add.
        let cross_entropy = [
            enable,
            COMMON,
            format,
            row_reduce,
            ROW_STATS,
            CLASS_INDEX,
            CROSS_ENTROPY,
        ];
        let cross_entropy_vec4 = [
            COMMON,
            FORMAT_F32X4,
            row_reduce,
            ROW_STATS,
            CLASS_INDEX,
            CROSS_ENTROPY,
            CROSS_ENTROPY_VEC4,
        ];
        let parts: &[&str] = match self {
            Family::Softmax => &[COMMON, row_reduce, ROW_STATS, SOFTMAX],
            Family::SoftmaxVec4 => &[COMMON, row_reduce, ROW_STATS, SOFTMAX_VEC4],
            Family::SoftmaxResident => &[
                COMMON,
                row_reduce,
                ROW_STATS,
                SOFTMAX_VEC4,
                ROW_RESIDENT,
                SOFTMAX_RESIDENT,
            ],
            Family::SoftmaxShort => &[COMMON, row_reduce, ROW_STATS, SOFTMAX, ROW_RESIDENT, SOFTMAX_SHORT],
            Family::CrossEntropy => &cross_entropy,
            Family::CrossEntropyShort => &[&cross_entropy[..], &[ROW_RESIDENT, CROSS_ENTROPY_SHORT]].concat(),
            Family::CrossEntropyVec4 => &cross_entropy_vec4,
            Family::CrossEntropyResident => {
                &[&cross_entropy_vec4[..], &[ROW_RESIDENT, CROSS_ENTROPY_RESIDENT]].concat()
            }
            Family::Nll => &[COMMON, format, CLASS_INDEX, NLL],
            Family::Reduce => &[COMMON, format, CLASS_INDEX, REDUCE],
            Family::Elementwise => &[COMMON, ELEMENTWISE],
        };
        unroll_slots(&parts.join("\n"), slots)
    }
}

/// Repeats each line that contains `$s` once per slot, `$s` replaced by 0, 1, …,
/// `slots - 1` (WGSL has no loop unrolling of its own, and a loop over an array of slots
/// would keep them in memory rather than in registers). Lines without `$s` are kept as
/// they are.
pub(crate) fn unroll_slots(source: &str, slots: u32) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        if line.contains("$s") {
            for s in 0..slots {
                out.push_str(&line.replace("$s", &s.to_string()));
                out.push('\n');
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

    /// Every module, in both row-reduction variants, parses and validates with naga
    /// (the version wgpu uses), so a WGSL error fails `cargo test`, not a user's app.
    #[test]
    fn every_shader_module_validates_with_naga() {
        for family in Family::ALL {
            for reduce in [RowReduce::Workgroup, RowReduce::Subgroup] {
                for precision in [Precision::F32, Precision::F16, Precision::Bf16] {
                    if precision != Precision::F32 && !family.has_half_variants() {
                        continue;
                    }
                    let source = family.source_for(reduce, precision, 3);
                    let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
                        panic!("{family:?}/{reduce:?}/{precision:?}: {}", e.emit_to_string(&source))
                    });
                    let mut validator = Validator::new(
                        ValidationFlags::all(),
                        Capabilities::SUBGROUP | Capabilities::SHADER_FLOAT16,
                    );
                    validator
                        .subgroup_stages(ShaderStages::COMPUTE)
                        .subgroup_operations(SubgroupOperationSet::all());
                    validator.validate(&module).unwrap_or_else(|e| {
                        panic!("{family:?}/{reduce:?}/{precision:?}: {}", e.emit_to_string(&source))
                    });
                }
            }
        }
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
    }

    /// Without the SUBGROUP capability only the subgroup variants may fail validation,
    /// so the fallback really uses no subgroup operation.
    #[test]
    fn workgroup_variant_needs_no_subgroup_capability() {
        for family in Family::ALL {
            let source = family.source_for(RowReduce::Workgroup, Precision::F32, 3);
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            Validator::new(ValidationFlags::all(), Capabilities::empty())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{family:?}: {}", e.emit_to_string(&source)));
        }
    }
}
