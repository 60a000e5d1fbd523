/** Tests live beside the code they check (`*.test.ts`). Type checking is done once by `tsc --noEmit`
 *  in `npm test`, so ts-jest only transpiles (isolatedModules) to keep the suite fast.
 *  Roots are the source folders that exist, so Jest never crawls a demo's output (hundreds of MB of DICOM). */
const fs = require('fs');
const path = require('path');

const SOURCE_FOLDERS = ['src', 'node-agent', 'researcher', 'examples'];

// Jest already runs two test files at once on this 2-core target; native kernels on every core in each would
// oversubscribe it and slow the timing-sensitive network tests. Kernel tests set their thread counts themselves.
process.env.FEDBIOMED_TS_THREADS = process.env.FEDBIOMED_TS_THREADS || '1';

// The repository's examples import the public API by its package name (`fedbiomed-ts`, `fedbiomed-ts/plan`, …):
// map each name of package.json's `exports` to its source entry module (`./dist/<path>.js` -> `<path>.ts`).
const pkg = require('./package.json');
const moduleNameMapper = {};
for (const [subpath, target] of Object.entries(pkg.exports)) {
  const file = typeof target === 'string' ? target : target.default;
  if (!file.startsWith('./dist/') || !file.endsWith('.js')) continue;
  const request = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
  moduleNameMapper[`^${request}$`] = `<rootDir>/${file.slice('./dist/'.length, -'.js'.length)}.ts`;
}

module.exports = {
  moduleNameMapper,
  testEnvironment: 'node',
  roots: SOURCE_FOLDERS.filter((dir) => fs.existsSync(path.join(__dirname, dir))).map((dir) => `<rootDir>/${dir}`),
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // Transpile only (type checking is tsc's job in npm test): ts-jest does that when the tsconfig it is given says
  // isolatedModules, which is set here rather than in tsconfig.json so tsc's own checks stay as they are.
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json', diagnostics: false }] },
  setupFiles: ['<rootDir>/jest.setup.js'],
  testTimeout: 60000,
  maxWorkers: 2,
};
