#!/usr/bin/env node
// Runs an ONNX model with onnxruntime-node outside Jest: Jest's sandbox has its own Float32Array, which makes
// onnxruntime's output tensors fail their `instanceof Float32Array` check. Reads one JSON request on stdin:
//   { "model": "<path to .onnx>", "feeds": { "<name>": { "dims": [...], "data": "<base64 little-endian float32>" } } }
// and prints { "inputNames": [...], "outputNames": [...], "outputs": { "<name>": { "dims": [...], "data": [...] } } }.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const request = JSON.parse(fs.readFileSync(0, 'utf8'));
  const session = await ort.InferenceSession.create(request.model);
  const feeds = {};
  for (const [name, t] of Object.entries(request.feeds)) {
    const bytes = Buffer.from(t.data, 'base64');
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    feeds[name] = new ort.Tensor('float32', data, t.dims);
  }
  const result = await session.run(feeds);
  const outputs = {};
  for (const [name, t] of Object.entries(result)) outputs[name] = { dims: t.dims, data: Array.from(t.data) };
  process.stdout.write(JSON.stringify({ inputNames: session.inputNames, outputNames: session.outputNames, outputs }));
  await session.release();
}

if (require.main === module) main().catch((err) => {
  process.stderr.write(`onnx-child: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
