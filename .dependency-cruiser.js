/**
 * The allowed arrows between the repository's areas (docs/ARCHITECTURE.md, "Layers and the arrows between them"),
 * checked by `npm run lint:deps` so that they are rules a tool enforces, not only prose.
 * Dependency-cruiser follows static imports and `require('literal')`; a path computed at run time (the lazy command
 * modules of src/cli/main.ts) is invisible to it, which is why main.ts is named below as a composition root.
 */
/** The composition roots: the only files of src/ allowed to name the sides. */
const COMPOSITION_ROOTS = '^src/(index|cli/main)\\.ts$';
const TESTS = '\\.test\\.ts$';
/** Tests and their helpers (`testing/` folders) may reach across areas to set a case up. */
const TESTS_AND_HELPERS = '(\\.test\\.ts$|/testing/)';

/**
 * The arrows inside src/ (docs/ARCHITECTURE.md): each area of the core and the areas it may import. Every area may
 * also import the two leaf modules src/errors.ts and src/package-root.ts. src/cli and src/index.ts are composition
 * roots (they may import every area).
 */
const CORE_ARROWS = {
  protocol: [],
  serialize: ['protocol'],
  engine: ['protocol', 'serialize'],
  plan: ['engine', 'serialize', 'protocol'],
  data: ['plan', 'engine', 'serialize', 'protocol'],
  transport: ['protocol', 'serialize'],
};

const coreRules = Object.entries(CORE_ARROWS).map(([area, allowed]) => ({
  name: `core-${area}-arrows`,
  comment: `src/${area} may import ${allowed.length ? allowed.map((a) => `src/${a}`).join(', ') : 'no other area'} ` +
    '(and the leaf modules src/errors.ts, src/package-root.ts), never an area above it.',
  severity: 'error',
  from: { path: `^src/${area}/`, pathNot: TESTS_AND_HELPERS },
  to: { path: '^src/', pathNot: `^src/(${[area, ...allowed].join('|')})/|^src/(errors|package-root)\\.ts$` },
}));

/** The two sides never import each other, in either direction. */
const sideRules = [['node-agent', 'researcher'], ['researcher', 'node-agent']].map(([side, other]) => ({
  name: `${side}-not-${other}`,
  comment: 'The two sides never import each other: they only meet on the wire.',
  severity: 'error',
  // End-to-end tests (researcher/*.test.ts) start a real node beside the researcher: tests are exempt.
  from: { path: `^${side}/`, pathNot: TESTS },
  to: { path: `^${other}/` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...coreRules,
    {
      name: 'core-leaves',
      comment: 'src/errors.ts and src/package-root.ts are leaves: every area imports them, they import no module of ours.',
      severity: 'error',
      from: { path: '^src/(errors|package-root)\\.ts$' },
      to: { path: '^(src|node-agent|researcher|examples)/' },
    },
    ...sideRules,
    {
      name: 'core-not-sides',
      comment:
        'src/ is the shared core and imports neither side nor the examples. Exceptions: the composition roots ' +
        'src/index.ts (the package entry re-exports both sides) and src/cli/main.ts (the CLI names every command group).',
      severity: 'error',
      from: { path: '^src/', pathNot: COMPOSITION_ROOTS },
      to: { path: '^(node-agent|researcher|examples)/' },
    },
    {
      name: 'examples-public-api-only',
      comment:
        'Examples show what a user can write: they import only the package (`fedbiomed-ts` and its subpaths, ' +
        'mapped to the entry modules by tsconfig paths) or their own files. Their tests may reach further.',
      severity: 'error',
      from: { path: '^examples/', pathNot: TESTS },
      to: {
        path: '^(src|node-agent|researcher)/',
        pathNot: '^(src/index|src/plan/index|src/transport/index|src/data/index|researcher/index|node-agent/index)\\.ts$',
      },
    },
    {
      name: 'examples-via-package-name',
      comment: 'An entry module reached by a relative path is still an internal path: use the package name.',
      severity: 'error',
      from: { path: '^examples/', pathNot: TESTS },
      to: { path: '^(src|node-agent|researcher)/', dependencyTypesNot: ['aliased-tsconfig-paths'] },
    },
    {
      name: 'no-cycle-between-areas',
      comment: 'No cycle between the top-level areas (a cycle inside one area is that area\'s business).',
      severity: 'error',
      // $1 is the area of the module the cycle starts from; the cycle is reported if it leaves that area.
      from: { path: '^(src|node-agent|researcher|examples|bench|tools)/' },
      to: { circular: true, viaSomeNot: '^$1/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
