'use strict';
/*
 * The compile step both native build scripts share (src/engine/native/build.js for the kernels addon,
 * src/data/native/build.js for the decoding programs): the system C compiler ($CC, else cc), or C++ compiler ($CXX,
 * else c++) for C++ sources, writes a temporary file that is renamed over the output, so a failed or interrupted build
 * never leaves a broken binary.
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

/**
 * Compiles `out` with the arguments `argsFor(outputPath)` gives (with the C++ compiler when `language` is 'c++'); on
 * failure calls `giveUp(reason)`, which prints why and exits the build script (or throws).
 */
function compileAtomically(out, argsFor, giveUp, language = 'c') {
  const cc = language === 'c++' ? process.env.CXX || 'c++' : process.env.CC || 'cc';
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const temporary = `${out}.${process.pid}.tmp`;
  const result = spawnSync(cc, argsFor(temporary), { encoding: 'utf8' });
  if (result.error) giveUp(`${cc} could not run (${result.error.message})`);
  if (result.status !== 0) {
    fs.rmSync(temporary, { force: true });
    giveUp(`${cc} failed:\n${result.stderr.trim()}`);
  }
  fs.renameSync(temporary, out);
}

module.exports = { compileAtomically };
