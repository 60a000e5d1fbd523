import { FedbiomedTsError } from './errors';
import { TrainingArgsError } from './protocol/training-args';
import { RepositoryError } from './transport/repository';
import { ERROR_NUMBERS } from './protocol/error-numbers';
import { ChunkAssembler, ChunkSequenceError } from './transport/v6/chunks';
import { decodeV6Message, V6MessageError } from './transport/v6/messages';
import { encodeV6Payload } from './transport/v6/payload';
import { NotDicomFileError } from './data/dicom-file';
import { DataReadError } from './data/errors';

describe('FedbiomedTsError', () => {
  it('keeps the message, the cause and the error number', () => {
    const cause = new Error('below');
    const e = new FedbiomedTsError('bad', { errnum: 'FB414', cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('bad');
    expect(e.cause).toBe(cause);
    expect(e.errnum).toBe('FB414');
    expect(new FedbiomedTsError('plain').errnum).toBeUndefined();
  });

  it('is the base of the errors of the areas, with their Fed-BioMed number where there is one', () => {
    const args = new TrainingArgsError('epochs', 'must be an integer');
    expect(args).toBeInstanceOf(FedbiomedTsError);
    expect(args.errnum).toBe('FB414');
    expect(args.message.startsWith(`${args.errnum as string}:`)).toBe(true);
    expect(new RepositoryError('x', 'unreachable', 'http://h/')).toBeInstanceOf(FedbiomedTsError);
    expect(Object.keys(ERROR_NUMBERS)).toContain(args.errnum);
  });

  it('is the base of the v6 transport errors too, as they are thrown (researcher/v6-link.test.ts: V6LinkError)', () => {
    const badChunk = () => new ChunkAssembler().push({ size: 0, iteration: 1, bytes_: Buffer.alloc(0) });
    expect(badChunk).toThrow(ChunkSequenceError);
    expect(badChunk).toThrow(FedbiomedTsError);
    const badMessage = () => decodeV6Message(encodeV6Payload([1, 2]));
    expect(badMessage).toThrow(V6MessageError);
    expect(badMessage).toThrow(FedbiomedTsError);
  });

  it('names every error after its own class, subclasses of subclasses included', () => {
    expect(new FedbiomedTsError('x').name).toBe('FedbiomedTsError');
    expect(new RepositoryError('x', 'unreachable', 'http://h/').name).toBe('RepositoryError');
    const notDicom = new NotDicomFileError('/a.dcm', 'no DICM');
    expect([notDicom.name, notDicom.message]).toEqual(['NotDicomFileError', '/a.dcm: no DICM']);
    expect(notDicom).toBeInstanceOf(DataReadError);
    expect(String(new TrainingArgsError('epochs', 'must be an integer'))).toBe(
      'TrainingArgsError: FB414: bad type or value for training arguments: epochs: must be an integer');
  });
});
