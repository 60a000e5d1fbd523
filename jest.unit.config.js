/** `npm run test:unit`: the tests that need nothing outside Node — no Mosquitto, no Python oracle, no system tool
 *  (DCMTK, GDCM, OpenJPH, dcm2niix, systemd), no packing of the package. Not a list to keep up to date by hand: a
 *  test file is left out when it, or a test helper it imports (a file under `testing/` or a `*.test-helper.ts`),
 *  names one of the OUTSIDE_WORLD markers below. A new helper that starts something outside Node must name it too
 *  (it does anyway: the path or command it runs). The full suite (`npm test`) still runs everything. */
const fs = require('fs');
const path = require('path');
const base = require('./jest.config');

/** What a test that needs more than Node mentions: a program it starts, the package it packs, or the whole CLI
 *  program it runs end to end (the demo). */
const OUTSIDE_WORLD =
  /['"`](?:\/usr\/bin\/)?python3?['"`]|\/usr\/bin\/python3|\bmosquitto\b|\b(?:dcmodify|dcmdjpeg|dcmcjpeg|dcm2niix|gdcm\w*|ojph_\w+|systemd-analyze|npm pack)\b|bin\/fedbiomed-ts|fedbiomed-ts\.js/;
const RELATIVE_IMPORT = /(?:from|require\()\s*'(\.{1,2}\/[^']+)'/g;
const isHelper = (file) => /[\\/]testing[\\/]|\.test-helper\.ts$/.test(file);

function resolveImport(from, request) {
  const target = path.resolve(path.dirname(from), request);
  return [`${target}.ts`, `${target}.js`, path.join(target, 'index.ts'), target].find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

function needsOutsideWorld(file, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  const source = fs.readFileSync(file, 'utf8');
  if (OUTSIDE_WORLD.test(source)) return true;
  for (const [, request] of source.matchAll(RELATIVE_IMPORT)) {
    const helper = resolveImport(file, request);
    if (helper && isHelper(helper) && needsOutsideWorld(helper, seen)) return true;
  }
  return false;
}

function testFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : testFiles(full);
    return entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

const outside = base.roots
  .map((root) => root.replace('<rootDir>', __dirname))
  .flatMap(testFiles)
  .filter((file) => needsOutsideWorld(file));

module.exports = {
  ...base,
  testPathIgnorePatterns: [
    ...base.testPathIgnorePatterns,
    ...outside.map((file) => `^${path.relative(__dirname, file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`.replace('^', '^<rootDir>/')),
  ],
};
