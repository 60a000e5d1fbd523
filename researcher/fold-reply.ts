/**
 * Folds one node's results file into the round's average straight from the download stream: big tensors chunk by
 * chunk, small ones whole. A file with bad content (wrong shape, missing parameter, not a weight file) is rejected
 * and whatever it had added is taken out again; a broken transfer is undone the same way and retried.
 */
import { AggregationError } from './aggregators/tensors';
import { NodeContribution, StreamedDtypeError, StreamingFedAvg } from './aggregators/fedavg';
import type { FileRepository } from './network';
import { WeightsStreamError, streamParams } from './weights-stream';
import { WeightsFileError } from './weights-file';

export const DOWNLOAD_ATTEMPTS = 3;

function chunksOf(repository: FileRepository, url: string): AsyncIterable<Uint8Array> {
  if (repository.downloadChunks) return repository.downloadChunks(url);
  return (async function* () {
    yield await repository.download(url);
  })();
}

/** A content problem: retrying the download would give the same bytes. */
function isContentError(err: unknown): boolean {
  return err instanceof AggregationError || err instanceof WeightsStreamError || err instanceof WeightsFileError;
}

async function foldOnce(contribution: NodeContribution, url: string, repository: FileRepository, stream: boolean): Promise<void> {
  const sinkFor = stream ? (name: string, byteLength: number) => contribution.streamTensor(name, byteLength) : undefined;
  const streamed = streamParams(chunksOf(repository, url), url, sinkFor);
  for await (const [name, tensor] of streamed.tensors) contribution.addTensor(name, tensor);
  const aux = streamed.fields().optim_aux_var;
  if (aux && typeof aux === 'object' && Object.keys(aux).length > 0) {
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
): Promise<void> {
  const reread = () => streamParams(chunksOf(repository, url), url).tensors;
  let lastError: unknown;
  let stream = true;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const contribution = fedavg.beginNode(nodeId, sampleSize);
    try {
      await foldOnce(contribution, url, repository, stream);
      return;
    } catch (err) {
      lastError = err;
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
