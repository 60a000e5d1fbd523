import * as crypto from 'crypto';
import { MultipartError, MultipartParser, multipartBoundary, type PartHeaders } from './multipart';

interface Part {
  headers: PartHeaders;
  data: Buffer;
}

/** Parses `body` fed in pieces of `chunkSize` bytes. */
function parse(boundary: string, body: Buffer, chunkSize = body.length): Part[] {
  const parts: Part[] = [];
  let current: { headers: PartHeaders; chunks: Buffer[] } | undefined;
  const parser = new MultipartParser(boundary, {
    onPartBegin: (headers) => (current = { headers, chunks: [] }),
    onPartData: (chunk) => current!.chunks.push(Buffer.from(chunk)),
    onPartEnd: () => {
      parts.push({ headers: current!.headers, data: Buffer.concat(current!.chunks) });
      current = undefined;
    },
  });
  for (let i = 0; i < body.length; i += Math.max(1, chunkSize)) parser.write(body.subarray(i, i + chunkSize));
  parser.end();
  return parts;
}

const B = 'XyZ-boundary';

function body(...pieces: Array<string | Buffer>): Buffer {
  return Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
}

describe('MultipartParser', () => {
  const content = Buffer.concat([Buffer.from('\r\n--XyZ-boundar'), crypto.randomBytes(300), Buffer.from('\r\n--XyZ')]);
  const sample = body(
    'preamble to ignore\r\n',
    `--${B}\r\n`,
    'Content-Disposition: form-data; name="note"\r\n\r\n',
    'hello',
    `\r\n--${B}\r\n`,
    'Content-Disposition: form-data; name="file"; filename="w.mpk"\r\nContent-Type: application/octet-stream\r\n\r\n',
    content,
    `\r\n--${B}--\r\n`,
    'epilogue to ignore',
  );

  test('gives the same parts whatever the chunking, including near-boundary bytes inside the file', () => {
    const expected = parse(B, sample);
    expect(expected).toHaveLength(2);
    expect(expected[0].headers).toEqual({ name: 'note', filename: undefined, contentType: undefined });
    expect(expected[0].data.toString()).toBe('hello');
    expect(expected[1].headers).toEqual({ name: 'file', filename: 'w.mpk', contentType: 'application/octet-stream' });
    expect(expected[1].data.equals(content)).toBe(true);
    for (const size of [1, 2, 3, 7, 13, 16, 64, 100]) {
      expect(parse(B, sample, size)).toEqual(expected);
    }
  });

  test('a body that starts with the boundary, and an empty part', () => {
    const parts = parse(B, body(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="e.bin"\r\n\r\n\r\n--${B}--`));
    expect(parts).toHaveLength(1);
    expect(parts[0].data.length).toBe(0);
  });

  test('file names: quoted escapes as Django reads them, RFC 5987 filename*, UTF-8 bytes', () => {
    const names = (disposition: string) =>
      parse(B, body(`--${B}\r\nContent-Disposition: ${disposition}\r\n\r\nx\r\n--${B}--\r\n`))[0].headers.filename;
    expect(names('form-data; name="file"; filename="a\\"b.mpk"')).toBe('a"b.mpk');
    expect(names('form-data; name="file"; filename="..\\\\x.mpk"')).toBe('..\\x.mpk');
    expect(names('form-data; name="file"; filename="..\\x.mpk"')).toBe('..\\x.mpk');
    expect(names('form-data; name="file"; filename="semi;colon.mpk"')).toBe('semi;colon.mpk');
    expect(names("form-data; name=\"file\"; filename=\"fallback.mpk\"; filename*=UTF-8''r%C3%A9sultat.mpk")).toBe('résultat.mpk');
    expect(names('form-data; name="file"; filename="données.mpk"')).toBe('données.mpk');
  });

  test('malformed bodies raise MultipartError saying what is wrong', () => {
    const cases: Array<[Buffer, RegExp]> = [
      [body('no boundary at all'), /no boundary line/],
      [body(`--${B}\r\nContent-Disposition: form-data; name="file"\r\n\r\nunfinished`), /before its closing boundary/],
      [body(`--${B}\r\nX-Header-Without-Colon\r\n\r\nx\r\n--${B}--`), /malformed multipart header line/],
      [body(`--${B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${B}--`), /without a Content-Disposition/],
      [body(`--${B}\r\nContent-Disposition: attachment; name="f"\r\n\r\nx\r\n--${B}--`), /not form-data/],
      [body(`--${B}garbage\r\n`), /malformed multipart boundary line/],
      [body(`--${B}\r\nContent-Disposition: form-data; name="a"; x="${'y'.repeat(20_000)}"\r\n\r\nx\r\n--${B}--`), /headers exceed/],
    ];
    for (const [input, message] of cases) {
      expect(() => parse(B, input)).toThrow(MultipartError);
      expect(() => parse(B, input)).toThrow(message);
    }
    const many = body(...Array.from({ length: 40 }, () => `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n`), `--${B}--`);
    expect(() => parse(B, many)).toThrow(/more than 32 parts/);
  });

  test('multipartBoundary reads the boundary of multipart/form-data only', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBe('abc');
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b;c"')).toBe('a b;c');
    expect(multipartBoundary('application/json')).toBeUndefined();
    expect(multipartBoundary('multipart/form-data')).toBeUndefined();
    expect(multipartBoundary(`multipart/form-data; boundary=${'x'.repeat(71)}`)).toBeUndefined();
    expect(multipartBoundary(undefined)).toBeUndefined();
  });
});
