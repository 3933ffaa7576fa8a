//! import shared/row_stats

// Short rows of an even number of classes (≤ 32) taken PACK at a time by one invocation
// (the cross-entropy and softmax packed kernels): the fewest consecutive rows whose
// classes fill whole quads (one row of a multiple of 4 classes, else two: QUADS quads),
// read and written as whole vec4 through a block of registers.
//
// Each pipeline is built for one row length (the CLASSES override, set by the host), so
// every index into the invocation's block below is a constant once the functions are
// inlined and the block lives in registers; the host unrolls the `$s` lines for the
// row's ⌈CLASSES / 4⌉ quads.

override CLASSES: u32 = 1u;
// Rows per invocation and the quads they fill.
override PACK: u32 = select(2u, 1u, CLASSES % 4u == 0u);
override QUADS: u32 = PACK * CLASSES / 4u;

// The largest block: two rows of 30 classes.
const MAX_QUADS: u32 = 15u;
alias Block = array<vec4<f32>, MAX_QUADS>;

// Element e of a block.
fn block_element(block: ptr<function, Block>, e: u32) -> f32 {
    return (*block)[e / 4u][e % 4u];
}

// Classes 4q … 4q+3 of the block's row j, -inf past the row's end.
fn packed_quad(block: ptr<function, Block>, j: u32, q: u32) -> vec4<f32> {
    let e = j * CLASSES + 4u * q;
    let last = 4u * QUADS - 1u;
    let x = vec4<f32>(
        block_element(block, min(e, last)),
        block_element(block, min(e + 1u, last)),
        block_element(block, min(e + 2u, last)),
        block_element(block, min(e + 3u, last)),
    );
    return select(vec4<f32>(neg_inf_f32()), x, quad_classes(q) < vec4<u32>(CLASSES));
}

// Puts the outputs of classes 4q … 4q+3 of row j into the block (the classes in the row).
fn packed_put(block: ptr<function, Block>, j: u32, q: u32, d: vec4<f32>) {
    let e = j * CLASSES + 4u * q;
    if 4u * q < CLASSES { (*block)[e / 4u][e % 4u] = d.x; }
    if 4u * q + 1u < CLASSES { (*block)[(e + 1u) / 4u][(e + 1u) % 4u] = d.y; }
    if 4u * q + 2u < CLASSES { (*block)[(e + 2u) / 4u][(e + 2u) % 4u] = d.z; }
    if 4u * q + 3u < CLASSES { (*block)[(e + 3u) / 4u][(e + 3u) % 4u] = d.w; }
}
