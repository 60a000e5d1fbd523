/**
 * The common tail of the benchmarks' PyTorch epoch workers (the TorchWorker line protocol): greets with the torch
 * version, then for each "epoch" line trains one epoch with Adam (lr 1e-3) in batches of cfg['batch'] and answers
 * the epoch's milliseconds (wall clock, and the process's CPU time as `cpu_ms`: less sensitive to a loaded machine),
 * so a benchmark can interleave PyTorch and tfjs epochs under the same machine load.
 * The worker's head must define `model` and import json, sys, time and torch.
 */
export function torchEpochLoop(options: {
  /** The loss function, a Python expression. */
  lossFn: string;
  /** How many samples an epoch covers, a Python expression. */
  samples: string;
  /** The loss of the batch starting at sample `i` (size `bs`), a Python expression using `loss_fn`. */
  batchLoss: string;
}): string {
  return String.raw`opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = ${options.lossFn}
bs = cfg['batch']
print(json.dumps({'ready': torch.__version__}), flush=True)
for line in sys.stdin:
    if line.strip() != 'epoch':
        break
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(0, ${options.samples}, bs):
        opt.zero_grad()
        loss = ${options.batchLoss}
        loss.backward()
        opt.step()
    print(json.dumps({'ms': (time.perf_counter() - t0) * 1000, 'cpu_ms': (time.process_time() - c0) * 1000}), flush=True)
`;
}
