/**
 * Folds one node's results file into the round's average straight from the download stream, tensor by tensor.
 * A broken transfer is retried, skipping tensors already folded in; a file with bad content (wrong shape, missing
 * parameter, not a weight file) is rejected and whatever it had added is taken out again.
 */
import { AggregationError } from './aggregators/tensors';
import type { StreamingFedAvg } from './aggregators/fedavg';
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

export async function foldReply(
  fedavg: StreamingFedAvg,
  nodeId: string,
  url: string,
  sampleSize: number,
  repository: FileRepository,
  attempts = DOWNLOAD_ATTEMPTS,
): Promise<void> {
  const contribution = fedavg.beginNode(nodeId, sampleSize);
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      const streamed = streamParams(chunksOf(repository, url), url);
      for await (const [name, tensor] of streamed.tensors) {
        if (!contribution.added.has(name)) contribution.addTensor(name, tensor);
      }
      const aux = streamed.fields().optim_aux_var;
      if (aux && typeof aux === 'object' && Object.keys(aux).length > 0) {
        // Python aborts too unless it runs a declearn aggregator optimizer, which we do not.
        throw new WeightsFileError(`${url}: optim_aux_var is not empty (declearn auxiliary variables are not supported)`);
      }
      contribution.commit();
      return;
    } catch (err) {
      lastError = err;
      if (isContentError(err)) break;
    }
  }
  await contribution.abort(() => streamParams(chunksOf(repository, url), url).tensors);
  throw lastError;
}
