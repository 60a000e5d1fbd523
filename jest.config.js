/** Tests live beside the code they check (`*.test.ts`). Type checking is done once by `tsc --noEmit`
 *  in `npm test`, so ts-jest only transpiles (isolatedModules) to keep the suite fast. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['<rootDir>/{src,node-agent,researcher,examples}/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
