#!/usr/bin/env node
// The Node side of the embedding benchmark (cmd/fmembedbench, issue 4): the
// same model.onnx and the same texts through onnxruntime-node, measured the
// way the Go backends are measured.
//
// Node has no tokenizer here, so the script reads the token ids the Go side
// wrote (texts.json, from "fmembedbench texts": the ids the ort backend
// feeds its model). Its timings therefore EXCLUDE tokenization; the Go
// timings include it. Everything else is timed as in Go: building the input
// tensors (batch padded to its longest text, attention mask, token types 0),
// the run, mean pooling over the attention mask and L2 normalisation.
//
// Usage:
//   node node_embed.js --ort-node DIR --model model.onnx --texts texts.json
//        [--threads 1] [--batch 32] [--passes 3] [--singles 200]
//        [--vectors-ref go.f32] [--min-cosine 0.9999] [--name N] [--json out.json]
//
// --ort-node is the unpacked onnxruntime-node package (make ort leaves it in
// .cache/ort/node_modules/onnxruntime-node). --vectors-ref is the Go ort
// backend's vectors for all texts (raw little-endian float32); the script
// fails when any of its vectors has a lower cosine with Go's than
// --min-cosine.
'use strict';

const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const opts = {
    ortNode: '', model: '', texts: '', threads: 1, batch: 32, passes: 3, singles: 200,
    vectorsRef: '', minCosine: 0.9999, name: '', json: '',
  };
  const numeric = new Set(['threads', 'batch', 'passes', 'singles', 'minCosine']);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    const key = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in opts)) throw new Error(`unknown flag --${m[1]}`);
    const v = argv[++i];
    opts[key] = numeric.has(key) ? Number(v) : v;
    if (numeric.has(key) && !Number.isFinite(opts[key])) throw new Error(`--${m[1]} ${v}: not a number`);
  }
  if (!opts.ortNode || !opts.model || !opts.texts) throw new Error('--ort-node, --model and --texts are required');
  if (opts.threads < 1 || opts.batch < 1 || opts.passes < 1 || opts.singles < 0) throw new Error('bad counts');
  if (!opts.name) opts.name = `node-ort-t${opts.threads}`;
  return opts;
}

// The same formula as spread in cmd/fmembedbench: k of n at an even stride.
function spread(n, k) {
  if (k <= 0 || k > n) k = n;
  const out = [];
  for (let i = 0; i < k; i++) out.push(Math.floor((i * n) / k));
  return out;
}

// Nearest-rank quantile of sorted samples, as in the Go side.
function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  const i = Math.min(Math.max(Math.ceil(q * sorted.length) - 1, 0), sorted.length - 1);
  return sorted[i];
}

function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function peakRSSMiB() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function loadAverage() {
  try {
    return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return -1;
  }
}

// embedBatch runs one batch of token-id lists and returns unit vectors.
async function embedBatch(ort, session, idLists) {
  const b = idLists.length;
  let seq = 1;
  for (const ids of idLists) seq = Math.max(seq, ids.length);
  const ids = new BigInt64Array(b * seq);
  const mask = new BigInt64Array(b * seq);
  const types = new BigInt64Array(b * seq);
  idLists.forEach((l, i) => {
    for (let j = 0; j < l.length; j++) {
      ids[i * seq + j] = l[j];
      mask[i * seq + j] = 1n;
    }
  });
  const dims = [b, seq];
  const feeds = {};
  for (const name of session.inputNames) {
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', ids, dims);
    else if (name === 'attention_mask') feeds[name] = new ort.Tensor('int64', mask, dims);
    else if (name === 'token_type_ids') feeds[name] = new ort.Tensor('int64', types, dims);
    else throw new Error(`unsupported model input ${name}`);
  }
  const out = await session.run(feeds, ['last_hidden_state']);
  const t = out.last_hidden_state;
  if (t.dims.length !== 3 || t.dims[0] !== b || t.dims[1] !== seq) throw new Error(`output shape ${t.dims}`);
  const h = t.dims[2];
  const data = t.data;
  const vecs = [];
  idLists.forEach((l, i) => {
    const v = new Float64Array(h);
    for (let j = 0; j < l.length; j++) {
      const row = (i * seq + j) * h;
      for (let k = 0; k < h; k++) v[k] += data[row + k];
    }
    let norm = 0;
    for (let k = 0; k < h; k++) {
      v[k] /= l.length;
      norm += v[k] * v[k];
    }
    norm = Math.sqrt(norm) || 1;
    const f = new Float32Array(h);
    for (let k = 0; k < h; k++) f[k] = v[k] / norm;
    vecs.push(f);
  });
  if (typeof t.dispose === 'function') t.dispose();
  return vecs;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = require(path.resolve(opts.ortNode));
  const set = JSON.parse(fs.readFileSync(opts.texts, 'utf8'));
  const allIds = set.ids.map((l) => l.map((x) => BigInt(x)));
  const r = {
    kind: 'embed', name: opts.name, runtime: 'node', backend: 'ort', threads: opts.threads,
    tokenization: 'excluded', load_average: loadAverage(), batch: opts.batch, texts: allIds.length,
  };

  const t0 = process.hrtime.bigint();
  // Like for like with the Go ort backend (embed/model/ort.go): intra-op
  // threads as given, one inter-op thread, sequential execution, every
  // graph optimisation (ONNX Runtime's default in both).
  const session = await ort.InferenceSession.create(opts.model, {
    intraOpNumThreads: opts.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  await embedBatch(ort, session, [allIds[0]]);
  r.load_seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  const pass = async () => {
    const start = process.hrtime.bigint();
    const vecs = [];
    for (let s = 0; s < allIds.length; s += opts.batch) {
      vecs.push(...(await embedBatch(ort, session, allIds.slice(s, s + opts.batch))));
    }
    return { vecs, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  };
  await pass(); // warm-up, untimed
  let vecs = null;
  let wall = 0;
  const cpu0 = process.cpuUsage();
  r.pass_rates = [];
  for (let p = 0; p < opts.passes; p++) {
    const res = await pass();
    if (!vecs) vecs = res.vecs;
    wall += res.seconds;
    r.pass_rates.push(allIds.length / res.seconds);
  }
  const cpu = process.cpuUsage(cpu0);
  r.cpu_cores = (cpu.user + cpu.system) / 1e6 / wall;
  r.embeddings_per_second = median(r.pass_rates);
  r.dim = vecs[0].length;

  const lat = [];
  if (opts.singles > 0) {
    for (const j of spread(allIds.length, opts.singles)) {
      const start = process.hrtime.bigint();
      await embedBatch(ort, session, [allIds[j]]);
      lat.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  lat.sort((a, b) => a - b);
  r.singles = lat.length;
  r.single_p50_ms = percentile(lat, 0.5);
  r.single_p99_ms = percentile(lat, 0.99);

  let failure = null;
  if (opts.vectorsRef) {
    const buf = fs.readFileSync(opts.vectorsRef);
    const ref = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    const dim = ref.length / vecs.length;
    if (dim !== r.dim) throw new Error(`${opts.vectorsRef}: ${ref.length} floats, want ${vecs.length} × ${r.dim}`);
    let minCos = 1;
    let maxDiff = 0;
    vecs.forEach((v, i) => {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let k = 0; k < dim; k++) {
        const a = v[k];
        const b = ref[i * dim + k];
        dot += a * b;
        na += a * a;
        nb += b * b;
        maxDiff = Math.max(maxDiff, Math.abs(a - b));
      }
      minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
    });
    r.min_cosine = minCos;
    r.max_abs_diff = maxDiff;
    if (!(minCos >= opts.minCosine)) {
      failure = `vectors differ from ${opts.vectorsRef}: lowest cosine ${minCos.toFixed(6)}, want ≥ ${opts.minCosine}`;
    }
  }
  r.peak_rss_mib = peakRSSMiB();
  await session.release();

  console.log(
    `${r.name.padEnd(12)} ${r.embeddings_per_second.toFixed(1).padStart(8)} embeddings/s (batch ${r.batch}, ` +
      `${r.texts} texts, ${r.cpu_cores.toFixed(2)} cores)  single p50 ${r.single_p50_ms.toFixed(1)} ms ` +
      `p99 ${r.single_p99_ms.toFixed(1)} ms (${r.singles} calls)  peak RSS ${r.peak_rss_mib.toFixed(0)} MiB`,
  );
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(r, null, 2) + '\n');
  if (failure) throw new Error(failure);
}

main().catch((err) => {
  console.error(`node_embed: ${err.message}`);
  process.exit(1);
});
