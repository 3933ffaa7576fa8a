// The demo page: runs wgpu-loss's kernels on this browser's WebGPU through the wasm exports,
// checks each against the CPU twin compiled to wasm (with the crate's own test tolerances),
// shows how bad input is thrown, trains the digits classifier with a live loss curve, and
// writes the verdict into #status: `ALL CHECKS PASSED` or `CHECK FAILED: <what>`.

import init, {
  Demo,
  LossOptions,
  cpuCrossEntropy,
  cpuCrossEntropyWithGrad,
  cpuLinearCrossEntropyWithGrad,
  cpuLogSoftmax,
} from './pkg/wgpu_loss_web.js';

const ROWS = 512;
const CLASSES = 1000;
const TIMED_RUNS = 3;
const TRAIN_STEPS = 240;
const STEPS_PER_FRAME = 20;
const LEARNING_RATE = 1.0;
const MIN_TEST_ACCURACY = 0.92;

const failures = [];
const $ = (id) => document.getElementById(id);

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// xorshift32: the same batch on every run.
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

function scaleOf(values) {
  let m = 1;
  for (const v of values) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

// The crate's test rule (tests/common): non-finite values must match exactly, finite ones
// within abs + rel·|cpu|. Returns the worst |diff| / tolerance (Infinity for a mismatch).
function worstRatio(gpu, cpu, abs, rel) {
  if (gpu.length !== cpu.length) return { ratio: Infinity, where: `length ${gpu.length} vs ${cpu.length}` };
  let ratio = 0;
  let where = '';
  for (let i = 0; i < cpu.length; i++) {
    const g = gpu[i];
    const c = cpu[i];
    if (!Number.isFinite(g) || !Number.isFinite(c)) {
      if (!(Object.is(g, c) || (Number.isNaN(g) && Number.isNaN(c)))) {
        return { ratio: Infinity, where: `[${i}]: gpu ${g} vs cpu ${c}` };
      }
      continue;
    }
    const diff = Math.abs(g - c);
    const r = diff === 0 ? 0 : diff / (abs + rel * Math.abs(c));
    if (r > ratio) { ratio = r; where = `[${i}]: gpu ${g} vs cpu ${c}`; }
  }
  return { ratio, where };
}

const elementwise = (gpu, cpu, inputs) => worstRatio(gpu, cpu, 2e-5 * scaleOf(inputs), 1e-4);
const gradient = (gpu, cpu) => worstRatio(gpu, cpu, 1e-5 * maxAbs(cpu), 1e-4);
const lossRule = (gpu, cpu, logits, rows, weight, reduced) =>
  worstRatio(gpu, cpu, 2e-5 * scaleOf(logits) * (weight ? scaleOf(weight) : 1) * (reduced ? Math.sqrt(rows) : 1), 1e-4);

function maxAbs(values) {
  let m = 0;
  for (const v of values) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

async function bestTime(run) {
  let best = Infinity;
  let result;
  for (let i = 0; i < TIMED_RUNS; i++) {
    const t0 = performance.now();
    result = await run();
    best = Math.min(best, performance.now() - t0);
  }
  return { result, ms: best };
}

function batch(seed) {
  const next = random(seed);
  const logits = Float32Array.from({ length: ROWS * CLASSES }, () => 16 * next() - 8);
  const targets = Int32Array.from({ length: ROWS }, (_, r) => (r % 7 === 3 ? -100 : Math.floor(next() * CLASSES)));
  const weight = Float32Array.from({ length: CLASSES }, (_, c) => 0.25 + (c % 7) * 0.3);
  return { logits, targets, weight };
}

function options({ reduction, weight, labelSmoothing }) {
  const opts = new LossOptions();
  opts.reduction = reduction;
  if (weight) opts.weight = weight;
  opts.labelSmoothing = labelSmoothing;
  return opts;
}

// One row of the checks table: runs `gpu` and `cpu` (warm-up, then best of TIMED_RUNS),
// compares with `compare`, which returns [name, {ratio, where}] pairs.
async function check(op, shape, gpu, cpu, compare) {
  const row = $('checks').tBodies[0].insertRow();
  cell(row, op);
  cell(row, shape);
  await gpu();
  const g = await bestTime(gpu);
  const c = await bestTime(async () => cpu());
  const parts = compare(g.result, c.result);
  const worst = parts.reduce((a, b) => (b[1].ratio > a[1].ratio ? b : a));
  const passed = parts.every(([, p]) => p.ratio <= 1);
  cell(row, g.ms.toFixed(1), 'num');
  cell(row, c.ms.toFixed(1), 'num');
  cell(row, parts.map(([name, p]) => `${name} ${p.ratio.toExponential(2)}`).join(', '), 'num');
  cell(row, passed ? 'pass' : 'FAIL', passed ? 'ok' : 'bad');
  if (!passed) failures.push(`${op}: ${worst[0]}${worst[1].where} beyond tolerance`);
}

async function runChecks(demo) {
  const shape = `${ROWS} × ${CLASSES}`;
  const { logits, targets, weight } = batch(1234);

  // Log-softmax with the non-finite cases: -inf entries, a row of -inf, a row with +inf.
  const special = logits.slice();
  special.fill(-Infinity, 0, 10);
  special.fill(-Infinity, CLASSES, 2 * CLASSES);
  special[2 * CLASSES + 5] = Infinity;
  await check('log_softmax (with ±inf rows)', shape,
    () => demo.logSoftmax(special, ROWS, CLASSES),
    () => cpuLogSoftmax(special, ROWS, CLASSES),
    (g, c) => [['', elementwise(g, c, special)]]);

  const weighted = options({ reduction: 'mean', weight, labelSmoothing: 0.1 });
  await check('cross_entropy (mean, weight, ε=0.1, ignore_index)', shape,
    () => demo.crossEntropy(logits, targets, ROWS, CLASSES, weighted),
    () => cpuCrossEntropy(logits, targets, ROWS, CLASSES, weighted),
    (g, c) => [['loss', lossRule(g, c, logits, ROWS, weight, true)]]);

  const one = Float32Array.of(1);
  await check('cross_entropy_with_grad (mean, weight, ε=0.1, ignore_index)', shape,
    () => demo.crossEntropyWithGrad(logits, targets, ROWS, CLASSES, weighted, one),
    () => cpuCrossEntropyWithGrad(logits, targets, ROWS, CLASSES, weighted, one),
    (g, c) => [['loss', lossRule(g.loss, c.loss, logits, ROWS, weight, true)], ['grad', gradient(g.grad, c.grad)]]);

  const perRow = options({ reduction: 'none', labelSmoothing: 0 });
  const next = random(99);
  const upstream = Float32Array.from({ length: ROWS }, () => 4 * next() - 2);
  await check('cross_entropy_with_grad (none, upstream gradient)', shape,
    () => demo.crossEntropyWithGrad(logits, targets, ROWS, CLASSES, perRow, upstream),
    () => cpuCrossEntropyWithGrad(logits, targets, ROWS, CLASSES, perRow, upstream),
    (g, c) => [['loss', lossRule(g.loss, c.loss, logits, ROWS, null, false)], ['grad', gradient(g.grad, c.grad)]]);

  // Fused linear + cross-entropy: 256 tokens of hidden size 64, a vocabulary of 1000; the
  // logits are never stored on the GPU, the CPU twin computes them whole in f64.
  const [TOKENS, HIDDEN, VOCAB] = [256, 64, 1000];
  const r = random(7);
  const hidden = Float32Array.from({ length: TOKENS * HIDDEN }, () => 2 * r() - 1);
  const lin = Float32Array.from({ length: VOCAB * HIDDEN }, () => (2 * r() - 1) * 0.375);
  const tokenTargets = Int32Array.from({ length: TOKENS }, (_, t) => (t % 9 === 4 ? -100 : Math.floor(r() * VOCAB)));
  const mean = options({ reduction: 'mean', labelSmoothing: 0.1 });
  await check('linear_cross_entropy_with_grad (fused, mean, ε=0.1)', `${TOKENS} × ${HIDDEN} × ${VOCAB}`,
    () => demo.linearCrossEntropyWithGrad(hidden, lin, tokenTargets, TOKENS, HIDDEN, VOCAB, mean, one),
    () => cpuLinearCrossEntropyWithGrad(hidden, lin, tokenTargets, TOKENS, HIDDEN, VOCAB, mean, one),
    (g, c) => [
      ['loss', worstRatio(g.loss, c.loss, 2e-5 * Math.sqrt(HIDDEN), 1e-4)],
      ['grad_hidden', gradient(g.gradHidden, c.gradHidden)],
      ['grad_weight', gradient(g.gradWeight, c.gradWeight)],
    ]);
}

// Calls that must throw; the GPU export and the CPU twin must throw the same message.
async function runErrorCases(demo) {
  const cases = [
    {
      call: 'crossEntropy(4 × 5 logits, targets [0, 1, 7, 2])',
      expected: 'target 7 in row 2 is out of bounds: not in [0, 5) and not ignore_index',
      gpu: () => demo.crossEntropy(new Float32Array(20), Int32Array.of(0, 1, 7, 2), 4, 5, new LossOptions()),
      cpu: () => cpuCrossEntropy(new Float32Array(20), Int32Array.of(0, 1, 7, 2), 4, 5, new LossOptions()),
    },
    {
      call: 'logSoftmax(5 logits, rows 2, classes 3)',
      expected: '`logits` has 5 elements but the shape needs 6',
      gpu: () => demo.logSoftmax(new Float32Array(5), 2, 3),
      cpu: () => cpuLogSoftmax(new Float32Array(5), 2, 3),
    },
  ];
  for (const c of cases) {
    const row = $('errors').tBodies[0].insertRow();
    cell(row, c.call, 'msg');
    const thrown = [];
    for (const run of [c.gpu, c.cpu]) {
      let error = null;
      try {
        await run();
      } catch (e) {
        error = e;
      }
      thrown.push(error);
      cell(row, error instanceof Error ? `${error.name}: ${error.message}` : `no Error (${error})`, 'msg');
    }
    const passed = thrown.every((e) => e instanceof Error && e.message === c.expected);
    cell(row, passed ? 'pass' : 'FAIL', passed ? 'ok' : 'bad');
    if (!passed) failures.push(`${c.call} did not throw Error(${JSON.stringify(c.expected)}) on both`);
  }
}

function drawLossCurve(losses, total) {
  const canvas = $('loss-curve');
  const ctx = canvas.getContext('2d');
  const [w, h, left, bottom, pad] = [canvas.width, canvas.height, 48, 28, 12];
  const top = Math.max(...losses, 0.1);
  const x = (i) => left + (i / Math.max(total - 1, 1)) * (w - left - pad);
  const y = (v) => pad + (1 - v / top) * (h - bottom - pad);
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#999';
  ctx.fillStyle = '#444';
  ctx.font = '12px sans-serif';
  ctx.beginPath();
  ctx.moveTo(left, pad);
  ctx.lineTo(left, h - bottom);
  ctx.lineTo(w - pad, h - bottom);
  ctx.stroke();
  for (const v of [0, top / 2, top]) ctx.fillText(v.toFixed(2), 6, y(v) + 4);
  ctx.fillText('0', left - 4, h - 10);
  ctx.fillText(`step ${total}`, w - pad - 60, h - 10);
  ctx.fillText('training loss (mean cross-entropy of each batch)', left + 10, pad + 12);
  ctx.strokeStyle = '#1565c0';
  ctx.lineWidth = 2;
  ctx.beginPath();
  losses.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
  ctx.stroke();
}

async function loadDigits() {
  const response = await fetch('digits.csv.gz');
  if (!response.ok) throw new Error(`digits.csv.gz: HTTP ${response.status}`);
  const text = response.body.pipeThrough(new DecompressionStream('gzip')).pipeThrough(new TextDecoderStream());
  let csv = '';
  for await (const chunk of text) csv += chunk;
  return csv;
}

async function runTraining(demo) {
  const trainer = await demo.digitsTrainer(await loadDigits(), LEARNING_RATE);
  const info = $('training');
  const losses = [];
  const t0 = performance.now();
  while (losses.length < TRAIN_STEPS) {
    losses.push(...(await trainer.train(Math.min(STEPS_PER_FRAME, TRAIN_STEPS - losses.length))));
    drawLossCurve(losses, TRAIN_STEPS);
    const ms = performance.now() - t0;
    info.textContent = `${trainer.trainRows} training images in batches of ${trainer.batchSize}, ` +
      `${trainer.testRows} held out; step ${losses.length}/${TRAIN_STEPS}, ` +
      `batch loss ${losses[losses.length - 1].toFixed(4)}, ${(ms / losses.length).toFixed(1)} ms/step ` +
      `(learning rate ${LEARNING_RATE})`;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const ev = await trainer.evaluate();
  const first = losses[0];
  const epoch = Math.ceil(trainer.trainRows / trainer.batchSize);
  const last = losses.slice(-epoch).reduce((a, b) => a + b, 0) / epoch;
  $('evaluation').textContent =
    `Test accuracy ${(100 * ev.testAccuracy).toFixed(1)}% (CPU logits from the same weights: ` +
    `${(100 * ev.cpuTestAccuracy).toFixed(1)}%); test loss ${ev.testLoss.toFixed(5)} on the GPU, ` +
    `${ev.cpuTestLoss.toFixed(5)} by the CPU twin; worst logit |diff| / tolerance ${ev.logitErrorRatio.toExponential(2)}.`;
  const expectations = [
    [Math.abs(first - Math.log(10)) <= 1e-5, `first loss ${first} is not ln 10 (zero weights)`],
    [last < first / 4, `loss fell only from ${first} to ${last} (mean of the last epoch)`],
    [ev.testAccuracy >= MIN_TEST_ACCURACY, `test accuracy ${ev.testAccuracy} < ${MIN_TEST_ACCURACY}`],
    [Math.abs(ev.testAccuracy - ev.cpuTestAccuracy) <= 1 / trainer.testRows + 1e-12,
      `GPU and CPU test accuracy differ: ${ev.testAccuracy} vs ${ev.cpuTestAccuracy}`],
    [ev.logitErrorRatio <= 1, `test logits differ from the CPU's (worst ratio ${ev.logitErrorRatio})`],
    [Math.abs(ev.testLoss - ev.cpuTestLoss) <= ev.lossTolerance,
      `test loss ${ev.testLoss} vs CPU twin ${ev.cpuTestLoss} (tolerance ${ev.lossTolerance})`],
  ];
  for (const [ok, what] of expectations) if (!ok) failures.push(`training: ${what}`);
  trainer.free();
}

function finish(extra) {
  if (extra) failures.push(extra);
  const status = $('status');
  status.textContent = failures.length === 0 ? 'ALL CHECKS PASSED' : `CHECK FAILED: ${failures.join('; ')}`;
  status.className = failures.length === 0 ? 'passed' : 'failed';
}

async function main() {
  await init();
  if (!navigator.gpu) throw new Error('this browser has no WebGPU (navigator.gpu is undefined)');
  const demo = await Demo.create();
  $('adapter').textContent = `Adapter: ${demo.adapterSummary}`;
  await runChecks(demo);
  await runErrorCases(demo);
  await runTraining(demo);
}

main().then(() => finish(), (e) => finish(`${e && e.name ? `${e.name}: ` : ''}${e && e.message ? e.message : e}`));
