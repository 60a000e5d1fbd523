/**
 * Folds one node's results file into the round's average straight from the download stream: big tensors chunk by
 * chunk, small ones whole. A file with bad content (wrong shape, missing parameter, not a weight file) is rejected
 * and whatever it had added is taken out again; a broken transfer is undone the same way and retried.
 */
import { AggregationError } from './aggregators/tensors';
import { NodeContribution, StreamedDtypeError, StreamingFedAvg, type TensorSink } from './aggregators/fedavg';
import type { FileRepository } from './network';
import { WeightsStreamError, streamParams } from './weights-stream';
import { WeightsFileError } from './weights-file';
import { urlForMessage } from '../src/transport/url';
import { RepositoryError } from '../src/transport/repository';
import { FedbiomedTsError } from '../src/errors';

const DOWNLOAD_ATTEMPTS = 3;
const REREAD_GRACE_MS = 10_000;

/** A download still running at the round's deadline: the node's contribution is refused, not waited for. */
class DownloadDeadlineError extends FedbiomedTsError {
  constructor(url: string, deadlineMs: number) {
    super(`download of ${urlForMessage(url)} not finished within the round deadline (${deadlineMs} ms)`);
  }
}

function chunksOf(repository: FileRepository, url: string, deadlineAt = Infinity): AsyncIterable<Uint8Array> {
  const chunks = repository.downloadChunks ? repository.downloadChunks(url) : (async function* () {
    yield await repository.download(url);
  })();
  if (deadlineAt === Infinity) return chunks;
  return withDeadline(chunks, url, deadlineAt);
}

/** Every chunk must arrive before `deadlineAt` (epoch ms); past it the iteration throws and the source is let go. */
async function* withDeadline(chunks: AsyncIterable<Uint8Array>, url: string, deadlineAt: number): AsyncIterable<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  const total = Math.max(0, deadlineAt - Date.now());
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DownloadDeadlineError(url, total)), Math.max(0, deadlineAt - Date.now()));
      });
      const next = await Promise.race([iterator.next(), late]).finally(() => clearTimeout(timer));
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Not awaited: a source stuck in a read would hold us past the deadline.
    void iterator.return?.()?.catch(() => undefined);
  }
}

/**
 * A contribution holding NaN or an infinity: averaged in, it would poison the global model (every later round
 * "diverges" with no culprit named). Refused, naming the node and the tensor.
 */
class NonFiniteContributionError extends FedbiomedTsError {
  constructor(readonly nodeId: string, readonly tensor: string) {
    super(`${nodeId} sent non-finite values (NaN or infinity) in '${tensor}': its contribution is refused`);
  }
}

/**
 * A results file the researcher will not fetch: on another host or port than its repository, or behind a redirect
 * (issue 11). Nothing was read from the foreign host; the message names the node, not what the host answered.
 */
class ForeignResultsError extends FedbiomedTsError {
  constructor(readonly nodeId: string, cause: RepositoryError) {
    super(`${nodeId}'s results file is refused: ${cause.message}`);
  }
}

/** A problem asking again cannot fix: the same bytes would come back, or the URL would be refused again. */
function isContentError(err: unknown): boolean {
  return err instanceof AggregationError || err instanceof WeightsStreamError || err instanceof WeightsFileError ||
    err instanceof NonFiniteContributionError || err instanceof DownloadDeadlineError ||
    (err instanceof RepositoryError && err.kind === 'foreign-origin');
}

function assertFinite(nodeId: string, name: string, data: ArrayLike<number | bigint>): void {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return;
  const values = data as ArrayLike<number>;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new NonFiniteContributionError(nodeId, name);
  }
}

/** Checks the float32 values streaming through a sink (chunks need not end on a value boundary). */
function finiteCheckingSink(nodeId: string, name: string, sink: TensorSink): TensorSink {
  const carry = new Uint8Array(4);
  let carried = 0;
  const view = new DataView(carry.buffer);
  return {
    write(bytes: Uint8Array): void {
      let i = 0;
      while (carried > 0 && carried < 4 && i < bytes.length) carry[carried++] = bytes[i++];
      if (carried === 4) {
        if (!Number.isFinite(view.getFloat32(0, true))) throw new NonFiniteContributionError(nodeId, name);
        carried = 0;
      }
      const whole = Math.floor((bytes.length - i) / 4) * 4;
      const dv = new DataView(bytes.buffer, bytes.byteOffset + i, whole);
      for (let k = 0; k < whole; k += 4) {
        if (!Number.isFinite(dv.getFloat32(k, true))) throw new NonFiniteContributionError(nodeId, name);
      }
      for (let k = i + whole; k < bytes.length; k++) carry[carried++] = bytes[k];
      sink.write(bytes);
    },
    end(dtype: string, shape: number[]): void {
      sink.end(dtype, shape);
    },
  };
}

async function foldOnce(contribution: NodeContribution, url: string, repository: FileRepository, stream: boolean,
  nodeId: string, deadlineAt: number): Promise<void> {
  const sinkFor = stream ? (name: string, byteLength: number) => {
    const sink = contribution.streamTensor(name, byteLength);
    return sink && finiteCheckingSink(nodeId, name, sink);
  } : undefined;
  const streamed = streamParams(chunksOf(repository, url, deadlineAt), url, sinkFor);
  for await (const [name, tensor] of streamed.tensors) {
    assertFinite(nodeId, name, tensor.data);
    contribution.addTensor(name, tensor);
  }
  const aux = streamed.fields().optim_aux_var;
  // A Map when its keys are not all plain strings (how the shared msgpack reader keeps any key).
  const auxEntries = aux instanceof Map ? aux.size : aux && typeof aux === 'object' ? Object.keys(aux).length : 0;
  if (auxEntries > 0) {
    // Python aborts too unless it runs a declearn aggregator optimizer, which we do not.
    throw new WeightsFileError(`${url}: optim_aux_var is not empty (declearn auxiliary variables are not supported)`);
  }
  contribution.commit();
}

export async function foldReply(
  fedavg: StreamingFedAvg,
  nodeId: string,
  url: string,
  sampleSize: number,
  repository: FileRepository,
  attempts = DOWNLOAD_ATTEMPTS,
  /** Epoch ms by which the download must be done (the round's deadline for this node). */
  deadlineAt = Infinity,
): Promise<void> {
  // Undoing a partial contribution reads the file again: a short grace past the deadline, then the round's
  // average is declared unusable rather than waited for.
  const reread = () => streamParams(chunksOf(repository, url, Math.max(deadlineAt, Date.now()) + REREAD_GRACE_MS), url).tensors;
  let lastError: unknown;
  let stream = true;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const contribution = fedavg.beginNode(nodeId, sampleSize);
    try {
      await foldOnce(contribution, url, repository, stream, nodeId, deadlineAt);
      return;
    } catch (err) {
      lastError = err instanceof RepositoryError && err.kind === 'foreign-origin' ? new ForeignResultsError(nodeId, err) : err;
      await contribution.abort(reread);
      if (fedavg.unusable) break;
      if (err instanceof StreamedDtypeError && stream) {
        // A big tensor that is not float32 (rare): read this file tensor by tensor instead.
        stream = false;
        attempt -= 1;
        continue;
      }
      if (isContentError(err)) break;
    }
  }
  throw lastError;
}
