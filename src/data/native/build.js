#!/usr/bin/env node
/*
 * Compiles the JPEG 2000 decoding helper (j2k-decode.c, a separate program, see its header) against the system's
 * OpenJPEG into build/fbts-j2k-decode with the system C compiler. Runs from the package's install script and by hand
 * (`npm run build:native`), like src/engine/native/build.js.
 *
 * Without a compiler or OpenJPEG's headers (Debian: apt-get install libopenjp2-7-dev) the readers still decode
 * JPEG 2000 through the wasm OpenJPEG (about 3x slower), so by default a failed build prints why and exits 0;
 * `--require` (CI) makes it exit 1 instead.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { compileAtomically } = require('../../engine/native/compile');

const HERE = __dirname;
const SOURCE = path.join(HERE, 'j2k-decode.c');
const OUT = path.join(HERE, 'build', 'fbts-j2k-decode');
const required = process.argv.includes('--require');

function giveUp(reason) {
  process.stderr.write(`[fedbiomed-ts] native JPEG 2000 decoder not built: ${reason}. JPEG 2000 DICOM decodes through ` +
    'the wasm OpenJPEG (about 3x slower). Install a C compiler and OpenJPEG\'s headers (e.g. apt-get install gcc ' +
    'libopenjp2-7-dev) and run: npm run build:native\n');
  process.exit(required ? 1 : 0);
}

/** Compiler and linker flags for libopenjp2: pkg-config's, else the usual include directories. */
function openjpegFlags() {
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'libopenjp2'], { encoding: 'utf8' });
  if (!pc.error && pc.status === 0) return pc.stdout.trim().split(/\s+/).filter(Boolean);
  for (const root of ['/usr/include', '/usr/local/include']) {
    if (!fs.existsSync(root)) continue;
    const dir = fs.readdirSync(root).filter((d) => d.startsWith('openjpeg-2.')).sort().pop();
    if (dir && fs.existsSync(path.join(root, dir, 'openjpeg.h'))) return [`-I${path.join(root, dir)}`, '-lopenjp2'];
  }
  return undefined;
}

function main() {
  const flags = openjpegFlags();
  if (!flags) giveUp("OpenJPEG's headers (openjpeg.h) not found (pkg-config libopenjp2, /usr/include/openjpeg-2.*)");
  compileAtomically(OUT, (output) => ['-O2', '-std=c11', '-Wall', '-Wextra', '-Werror', SOURCE, '-o', output, ...flags], giveUp);
  process.stderr.write(`[fedbiomed-ts] native JPEG 2000 decoder built: ${path.relative(process.cwd(), OUT)}\n`);
}

main();
