import * as fs from 'fs';
import * as path from 'path';
import { planHash } from './canonical';
import { EmbeddedPlanError, extractPlanFromTorchSource, findEmbeddedPlan } from './embed';
import { pyLiteral, pyString, readPythonString } from './python-literal';
import { generateTorchPlan, generateTorchPlanClass, TORCH_PLAN_DEFAULT_DEPENDENCIES } from './pytorch';
import { cnnTabularPlan, EXAMPLE_PLANS, mlpPlan } from './testing/plans';
import { definePlan } from './define';

/**
 * What python-minifier 2.5 does to a class body with Fed-BioMed's options (see the recorded *.minified.txt
 * vectors): 4-space indents become tabs, simple statements of a suite are joined with ';' after the colon,
 * and string literals are re-quoted (here: to double quotes, escaping accordingly).
 */
function minifyLike(source: string): string {
  return source
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
    .map((line) => line.replace(/^( {4})+/, (m) => '\t'.repeat(m.length / 4)))
    .join('\n')
    .replace(/\n\t(PLAN_SPEC) = '((?:[^'\\]|\\.)*)'/, (_m, name: string, body: string) => {
      const value = readPythonString(`'${body}'`, 0).value;
      return `;${name}=${JSON.stringify(value)}`;
    });
}

/** A deep copy with every object's keys in reverse order (arrays keep theirs). */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).reverse().map(([k, v]) => [k, reverseKeys(v)]));
}

describe('generated PyTorch plan file', () => {
  test('has the v4.5 layout: default dependency lines, plan dependencies, then the class source', () => {
    const spec = cnnTabularPlan();
    const file = generateTorchPlan(spec, { className: 'GbmPlan' });
    const lines = file.split('\n');
    expect(lines.slice(0, TORCH_PLAN_DEFAULT_DEPENDENCIES.length)).toEqual([...TORCH_PLAN_DEFAULT_DEPENDENCIES]);
    expect(file).toContain('\nfrom fedbiomed.common.data import MedicalFolderDataset\nclass GbmPlan(TorchTrainingPlan):\n');
    expect(file.endsWith(generateTorchPlanClass(spec, { className: 'GbmPlan' }))).toBe(true);
    expect(file.endsWith('\n')).toBe(true);
    expect(file).not.toMatch(/\t/);
  });

  test.each(Object.keys(EXAMPLE_PLANS))('plan %s: the embedded plan is recovered with the same hash', (key) => {
    const spec = EXAMPLE_PLANS[key]();
    const file = generateTorchPlan(spec);
    const found = findEmbeddedPlan(file)!;
    expect(found.spec).toEqual(spec);
    expect(found.hash).toBe(planHash(spec));
  });

  // Regression (found driving real Python v4.5 nodes): a plan read back from its generated .py came with sorted
  // keys and regenerated TABULAR_STEPS differently, so the Python node saw a new hash and refused the approved plan.
  test.each(Object.keys(EXAMPLE_PLANS))('plan %s: one source whatever the key order, and again from its own PLAN_SPEC', (key) => {
    const spec = EXAMPLE_PLANS[key]();
    const file = generateTorchPlan(spec, { className: 'SamePlan' });
    const reversed = reverseKeys(spec) as typeof spec;
    expect(JSON.stringify(reversed)).not.toBe(JSON.stringify(spec));
    expect(generateTorchPlan(reversed, { className: 'SamePlan' })).toBe(file);
    expect(generateTorchPlan(extractPlanFromTorchSource(file)!, { className: 'SamePlan' })).toBe(file);
  });

  test('the embedded plan survives minifier-style rewriting (tabs, joined statements, re-quoting)', () => {
    const spec = definePlan({
      ...mlpPlan(),
      name: 'Quotes',
      description: `it's "quoted" \\ back\\slash, tab\t, newline\n, unicode é ✓ 🧠`,
    });
    const minified = minifyLike(generateTorchPlan(spec));
    expect(minified).toContain(';PLAN_SPEC="');
    expect(minified).not.toContain("PLAN_SPEC = '");
    expect(extractPlanFromTorchSource(minified)).toEqual(spec);
  });

  test('the embedded plan survives the real python-minifier 2.5.0 (recorded fixture)', () => {
    const dir = path.join(__dirname, 'testing', 'fixtures');
    const original = findEmbeddedPlan(fs.readFileSync(path.join(dir, 'quotes_plan.py.txt'), 'utf8'))!;
    const minified = fs.readFileSync(path.join(dir, 'quotes_plan.py.minified.txt'), 'utf8');
    expect(minified).toContain(";PLAN_SPEC='{"); // joined to the docstring's line by the minifier
    const recovered = findEmbeddedPlan(minified)!;
    expect(recovered.spec).toEqual(original.spec);
    expect(recovered.hash).toBe(original.hash);
    expect(original.spec.description).toBe('it\'s "q" \\ é 🧠\n');
  });

  test('a Python plan without PLAN_SPEC gives undefined; a tampered one an error', () => {
    const handWritten = 'import torch\nclass Net(TorchTrainingPlan):\n    def init_model(self):\n        return None\n';
    expect(extractPlanFromTorchSource(handWritten)).toBeUndefined();
    const file = generateTorchPlan(mlpPlan());
    const tampered = file.replace('"lr":0.1', '"lr":0.5');
    expect(tampered).not.toBe(file);
    expect(() => extractPlanFromTorchSource(tampered)).toThrow(/PLAN_SHA256 .* does not match/);
    const invalid = file.replace('"outFeatures":8', '"outFeatures":-8').replace(/PLAN_SHA256 = '[0-9a-f]+'\n/, '');
    expect(() => extractPlanFromTorchSource(invalid)).toThrow(EmbeddedPlanError);
    expect(() => extractPlanFromTorchSource(invalid)).toThrow(/model\.tabular\[0\]\.outFeatures/);
    expect(() => extractPlanFromTorchSource(file.replace("PLAN_SPEC = '{", "PLAN_SPEC = '{{"))).toThrow(/not valid JSON/);
    expect(() => extractPlanFromTorchSource(`${file}    PLAN_SPEC = '{}'\n`)).toThrow(/2 times/);
  });

  test('a bad class name is refused', () => {
    expect(() => generateTorchPlan(mlpPlan(), { className: 'class' })).toThrow(/not a valid Python class name/);
    expect(() => generateTorchPlan(mlpPlan(), { className: '9x' })).toThrow(/not a valid Python class name/);
  });
});

describe('Python literals', () => {
  test('strings round-trip through our writer and reader', () => {
    for (const text of ['', "a'b", 'a"b', 'back\\slash', 'line\nbreak\r\t', 'é✓🧠', '\u0001\u007f', '\\x41']) {
      expect(readPythonString(pyString(text), 0).value).toBe(text);
    }
  });

  test('the reader understands the quote styles and escapes Python has', () => {
    expect(readPythonString(`"a\\"b" rest`, 0)).toEqual({ value: 'a"b', end: 6 });
    expect(readPythonString(`'''x'y\nz'''`, 0).value).toBe("x'y\nz");
    expect(readPythonString(`r'\\d'`, 0).value).toBe('\\d');
    expect(readPythonString(`'\\x41\\u00e9\\U0001F9E0\\101\\q'`, 0).value).toBe('Aé🧠A\\q');
    expect(() => readPythonString(`'open`, 0)).toThrow(/unterminated/);
    expect(() => readPythonString(`'\\xZZ'`, 0)).toThrow(/bad \\x escape/);
  });

  test('JSON values become Python literals', () => {
    expect(pyLiteral({ a: [1, 2.5, true, null], b: "it's" })).toBe(`{'a': [1, 2.5, True, None], 'b': 'it\\'s'}`);
  });
});
