#!/usr/bin/env node
/*
 * Compiles the native decoding helpers (separate programs, see their headers) into build/ with the system compilers,
 * against the system's libraries. Runs from the package's install script and by hand (`npm run build:native`), like
 * src/engine/native/build.js:
 *   fbts-j2k-decode   j2k-decode.c against OpenJPEG (Debian: libopenjp2-7-dev);
 *   fbts-jpeg-decode  jpeg-decode.cc against DCMTK's dcmjpeg and IJG libraries (Debian: g++ libdcmtk-dev).
 *
 * Without a compiler or a library's headers the readers still decode: JPEG 2000 through the wasm OpenJPEG (about 3x
 * slower), JPEG lossless through jpeg-lossless-decoder-js (slower), but 12-bit JPEG extended is then refused. So by
 * default a failed build prints why and exits 0; `--require` (CI) makes it exit 1 instead. Each helper is built on
 * its own: one missing library does not cost the other.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { compileAtomically } = require('../../engine/native/compile');

const HERE = __dirname;
const required = process.argv.includes('--require');

/** A failed helper build: the reason, and what the readers do without the helper. */
class NotBuilt extends Error {}

/** Compiler and linker flags for libopenjp2: pkg-config's, else the usual include directories. */
function openjpegFlags() {
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'libopenjp2'], { encoding: 'utf8' });
  if (!pc.error && pc.status === 0) return pc.stdout.trim().split(/\s+/).filter(Boolean);
  for (const root of ['/usr/include', '/usr/local/include']) {
    if (!fs.existsSync(root)) continue;
    const dir = fs.readdirSync(root).filter((d) => d.startsWith('openjpeg-2.')).sort().pop();
    if (dir && fs.existsSync(path.join(root, dir, 'openjpeg.h'))) return [`-I${path.join(root, dir)}`, '-lopenjp2'];
  }
  throw new NotBuilt("OpenJPEG's headers (openjpeg.h) not found (pkg-config libopenjp2, /usr/include/openjpeg-2.*)");
}

/**
 * Compiler and linker flags for DCMTK's JPEG decoders. Debian's dcmtk.pc names libraries its pkg-config cannot
 * resolve (sndfile), so the headers are looked up directly and only the libraries the helper uses are linked.
 */
function dcmtkFlags() {
  for (const root of ['/usr/include', '/usr/local/include']) {
    if (fs.existsSync(path.join(root, 'dcmtk', 'dcmjpeg', 'djdijg16.h'))) {
      const include = root === '/usr/include' ? [] : [`-I${root}`, `-L${path.join(path.dirname(root), 'lib')}`];
      return [...include, '-ldcmjpeg', '-lijg8', '-lijg12', '-lijg16', '-ldcmdata', '-loflog', '-lofstd'];
    }
  }
  throw new NotBuilt("DCMTK's headers (dcmtk/dcmjpeg/djdijg16.h) not found in /usr/include or /usr/local/include");
}

const HELPERS = [
  {
    what: 'JPEG 2000 decoder',
    out: 'fbts-j2k-decode',
    language: 'c',
    source: 'j2k-decode.c',
    flags: ['-O2', '-std=c11', '-Wall', '-Wextra', '-Werror'],
    libraries: openjpegFlags,
    without: 'JPEG 2000 DICOM decodes through the wasm OpenJPEG (about 3x slower)',
    install: 'gcc libopenjp2-7-dev',
  },
  {
    what: 'JPEG lossless / 12-bit extended decoder',
    out: 'fbts-jpeg-decode',
    language: 'c++',
    // DCMTK 3.6.7's configuration requires C++17 of its users.
    source: 'jpeg-decode.cc',
    flags: ['-O2', '-std=c++17', '-Wall', '-Wextra', '-Werror'],
    libraries: dcmtkFlags,
    without: 'JPEG lossless decodes through jpeg-lossless-decoder-js (slower) and 12-bit JPEG extended is refused',
    install: 'g++ libdcmtk-dev',
  },
];

function main() {
  let failed = false;
  for (const helper of HELPERS) {
    const out = path.join(HERE, 'build', helper.out);
    try {
      const libraries = helper.libraries(); // before compiling: a missing library is reported as such
      const args = (output) => [...helper.flags, path.join(HERE, helper.source), '-o', output, ...libraries];
      compileAtomically(out, args, (reason) => {
        throw new NotBuilt(reason);
      }, helper.language);
      process.stderr.write(`[fedbiomed-ts] native ${helper.what} built: ${path.relative(process.cwd(), out)}\n`);
    } catch (error) {
      if (!(error instanceof NotBuilt)) throw error;
      failed = true;
      process.stderr.write(`[fedbiomed-ts] native ${helper.what} not built: ${error.message}. ${helper.without}. Install a `
        + `compiler and the library's headers (e.g. apt-get install ${helper.install}) and run: npm run build:native\n`);
    }
  }
  process.exit(failed && required ? 1 : 0);
}

main();
