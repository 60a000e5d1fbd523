/** Runs an ONNX model in a separate Node process (see onnx-child.js for why), for tests. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface OnnxRun {
  inputNames: string[];
  outputNames: string[];
  outputs: Record<string, { dims: number[]; data: number[] }>;
}

export function runOnnxOutOfProcess(model: Uint8Array, feeds: Record<string, { dims: number[]; data: Float32Array }>): OnnxRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-onnx-'));
  try {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, model);
    const request = {
      model: file,
      feeds: Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, {
        dims: t.dims, data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64'),
      }])),
    };
    const out = execFileSync(process.execPath, [path.join(__dirname, 'onnx-child.js')], {
      input: JSON.stringify(request), maxBuffer: 256 * 1024 * 1024, cwd: path.join(__dirname, '..', '..', '..'),
    });
    return JSON.parse(out.toString('utf8')) as OnnxRun;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
