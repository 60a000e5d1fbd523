import { printable } from './printable';

describe('printable', () => {
  it('turns terminal escapes, forged lines and bidi overrides into visible escapes', () => {
    expect(printable('\x1b]0;pwned\x07title')).toBe('\\x1b]0;pwned\\x07title');
    expect(printable('\x1b[2J\x1b[Hclear')).toBe('\\x1b[2J\\x1b[Hclear');
    expect(printable('loss=0.1\r\nRound 9: 3/3 nodes ok')).toBe('loss=0.1\\x0d\\x0aRound 9: 3/3 nodes ok');
    expect(printable('a\u202ebc\u009bd\x7f')).toBe('a\\u202ebc\\x9bd\\x7f');
    expect(printable('two\nlines', { multiline: true })).toBe('two\nlines');
    expect(printable('naïve µ ok\ttab')).toBe('naïve µ ok\ttab');
  });

  it('hides credentials in URLs', () => {
    expect(printable('cannot connect to mqtts://fbuser:S3cret-pw@broker.example.org:8883: refused'))
      .toBe('cannot connect to mqtts://***@broker.example.org:8883: refused');
    expect(printable('see http://h.example.org/a@b')).toBe('see http://h.example.org/a@b');
  });
});
