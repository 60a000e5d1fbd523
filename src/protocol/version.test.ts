import { checkProtocolVersion, PROTOCOL_VERSION } from './version';

describe('checkProtocolVersion (Fed-BioMed raise_for_version_compatibility against "1")', () => {
  it('sends "1", like v4.5.0', () => {
    expect(PROTOCOL_VERSION).toBe('1');
  });

  it.each(['1', '1.0', '1.0.0', 'v1', ' 1 ', '1.0.0.0'])('accepts %p silently (equal to 1)', (version) => {
    expect(checkProtocolVersion(version)).toEqual({ ok: true });
  });

  it.each(['1rc1', '1.0.0a1', '1.0.dev3', '0!1.0+local.7', '1.0.0.1'])('accepts %p with a warning (same major, not newer)', (version) => {
    const result = checkProtocolVersion(version);
    expect(result.ok).toBe(true);
    expect(result.ok && result.warning).toContain(JSON.stringify(version));
  });

  it.each(['0', '2', '1.1', '1.0.1', '0.9', '10'])('rejects %p (other major, or newer minor/micro)', (version) => {
    const result = checkProtocolVersion(version);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(/incompatible with ours \("1"\)/);
  });

  it('treats a missing version as "0" and rejects it', () => {
    const result = checkProtocolVersion(undefined);
    expect(result).toEqual({ ok: false, error: expect.stringContaining('missing (counts as "0")') });
  });

  it.each([
    [1, /must be a string \(got number\)/],
    [null, /must be a string \(got null\)/],
    [['1'], /must be a string \(got object\)/],
    ['one', /"one" is not a valid version/],
    ['', /"" is not a valid version/],
    ['1..0', /not a valid version/],
  ])('rejects %p as not a version string', (version, message) => {
    const result = checkProtocolVersion(version);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(message);
  });
});
