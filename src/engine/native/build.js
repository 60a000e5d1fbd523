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
const fs = require('fs');
const path = require('path');
const { compileAtomically } = require('./compile');

const HERE = __dirname;
// bn.c: batch / group norm + ReLU (bn.h); copy.c: column-block copies for concat / split (copy.h); adam.c: the Adam
// step (adam.h); bce.c: binary cross-entropy with logits (bce.h).
const SOURCES = ['parallel.c', 'conv.c', 'pool.c', 'reduce.c', 'bias_relu.c', 'dp.c', 'bn.c', 'copy.c', 'adam.c', 'bce.c', 'addon.c']
  .map((f) => path.join(HERE, f));
const OUT = path.join(HERE, 'build', 'fbts-native.node');
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
  const flags = ['-O3', '-std=c11', '-pthread', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror'];
  // -lm: bn.c's sqrt and fma.
  compileAtomically(OUT, (output) => [...flags, `-I${include}`, ...SOURCES, '-o', output, '-lm'], giveUp);
  process.stderr.write(`[fedbiomed-ts] native kernels built: ${path.relative(process.cwd(), OUT)}\n`);
}

main();
