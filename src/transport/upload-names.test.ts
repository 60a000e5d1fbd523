import { candidatePaths, splitExtension, uploadDirectory, UploadNameError, validUploadName } from './upload-names';

describe('upload names (Django storage rules of Fed-BioMed\'s repository)', () => {
  test('uploads/YYYY/MM/DD in UTC', () => {
    expect(uploadDirectory(new Date('2023-11-09T23:59:59Z'))).toBe('uploads/2023/11/09');
    expect(uploadDirectory(new Date('2024-01-01T00:00:00Z'))).toBe('uploads/2024/01/01');
  });

  test("names made valid like Django's get_valid_filename", () => {
    expect(validUploadName('my_model_34e89161-6787-473a-97ae-a2978bd594c9.py')).toBe('my_model_34e89161-6787-473a-97ae-a2978bd594c9.py');
    expect(validUploadName('  my plan (v2)!.py ')).toBe('my_plan_v2.py');
    expect(validUploadName('données é.mpk')).toBe('données_é.mpk');
    expect(validUploadName('tab\tand\u0000nul.mpk')).toBe('tabandnul.mpk');
  });

  test('names with a directory part, dot names and names without usable characters are refused', () => {
    for (const bad of ['../x.mpk', 'a/b.mpk', '/etc/passwd', 'C:\\x.mpk', '..\\x', '.', '..', '', '!!!', '   ']) {
      expect(() => validUploadName(bad)).toThrow(UploadNameError);
    }
    expect(() => validUploadName('x'.repeat(101))).toThrow('Ensure this filename has at most 100 characters (it has 101).');
  });

  test("extensions split like Python's os.path.splitext", () => {
    expect(splitExtension('a.tar.gz')).toEqual(['a.tar', '.gz']);
    expect(splitExtension('.bashrc')).toEqual(['.bashrc', '']);
    expect(splitExtension('..a.b')).toEqual(['..a', '.b']);
    expect(splitExtension('noext')).toEqual(['noext', '']);
    expect(splitExtension('a.')).toEqual(['a', '.']);
  });

  test('candidates: the name, then stem_XXXXXXX.ext; paths longer than 100 characters are shortened', () => {
    const directory = 'uploads/2023/11/09';
    const candidates = candidatePaths(directory, 'weights.mpk');
    expect(candidates.next().value).toBe('uploads/2023/11/09/weights.mpk');
    const second = candidates.next().value as string;
    const third = candidates.next().value as string;
    expect(second).toMatch(/^uploads\/2023\/11\/09\/weights_[A-Za-z0-9]{7}\.mpk$/);
    expect(third).not.toBe(second);

    const long = `${'n'.repeat(90)}.mpk`; // 19 + 94 characters: over 100
    const first = candidatePaths(directory, long).next().value as string;
    expect(first.length).toBe(100);
    expect(first).toMatch(/^uploads\/2023\/11\/09\/n+_[A-Za-z0-9]{7}\.mpk$/);
  });
});
