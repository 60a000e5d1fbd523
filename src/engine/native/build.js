#!/usr/bin/env node
/*
 * Compiles the native kernels (conv.c, pool.c, reduce.c, bias_relu.c, dp.c, their thread helper parallel.c and the
 * Node-API binding addon.c) into build/fbts-native.node with the system C compiler. Runs as the package's install
 * script and by hand (`npm run build:native`).
 *
 * The compiler is called directly rather than through node-gyp: a Node-API addon of a few C files needs nothing but
 * Node's headers, and node-gyp would try to download those when they are not configured, which fails offline.
 *
 * Without a compiler or headers the engine still works (pure wasm kernels, about 2x slower), so by default a
 * failed build prints why and exits 0; `--require` (CI) makes it exit 1 instead.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const HERE = __dirname;
const SOURCES = ['parallel.c', 'conv.c', 'pool.c', 'reduce.c', 'bias_relu.c', 'dp.c', 'addon.c'].map((f) => path.join(HERE, f));
SOURCES.push(path.join(HERE, 'bn.c')); // batch norm + ReLU, training mode (bn.h)
SOURCES.push(path.join(HERE, 'copy.c')); // column-block copies: concat / split (copy.h)
const OUT_DIR = path.join(HERE, 'build');
const OUT = path.join(OUT_DIR, 'fbts-native.node');
const required = process.argv.includes('--require');

function headerDirs() {
  const dirs = [];
  if (process.env.npm_config_nodedir) dirs.push(path.join(process.env.npm_config_nodedir, 'include', 'node'));
  // Official tarballs and distribution packages put the headers beside the binary: <prefix>/include/node.
  dirs.push(path.resolve(path.dirname(process.execPath), '..', 'include', 'node'));
  dirs.push('/usr/include/node', '/usr/local/include/node');
  return dirs;
}

function giveUp(reason) {
  const message =
    `[fedbiomed-ts] native kernels not built: ${reason}. Training falls back to the wasm kernels ` +
    `(about 2x slower). Install a C compiler (e.g. apt-get install gcc) and run: npm run build:native`;
  process.stderr.write(`${message}\n`);
  process.exit(required ? 1 : 0);
}

function main() {
  if (process.arch !== 'x64') giveUp(`the kernels are written for x86-64 (AVX2/FMA), this is ${process.arch}`);
  const include = headerDirs().find((d) => fs.existsSync(path.join(d, 'node_api.h')));
  if (!include) giveUp(`Node's headers (node_api.h) not found in ${headerDirs().join(', ')}`);
  const cc = process.env.CC || 'cc';
  fs.mkdirSync(OUT_DIR, { recursive: true });
  // Written under a temporary name and renamed: a failed or interrupted build never leaves a broken addon behind.
  const temporary = `${OUT}.${process.pid}.tmp`;
  const args = ['-O3', '-std=c11', '-pthread', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror'];
  args.push(`-I${include}`, ...SOURCES, '-o', temporary);
  args.push('-lm'); // bn.c's sqrt and fma
  const result = spawnSync(cc, args, { encoding: 'utf8' });
  if (result.error) giveUp(`${cc} could not run (${result.error.message})`);
  if (result.status !== 0) {
    fs.rmSync(temporary, { force: true });
    giveUp(`${cc} failed:\n${result.stderr.trim()}`);
  }
  fs.renameSync(temporary, OUT);
  process.stderr.write(`[fedbiomed-ts] native kernels built: ${path.relative(process.cwd(), OUT)}\n`);
}

main();
