import { RequestRouter, InboundMessage } from './collector';

const reply = (node: string, extra: Record<string, unknown> = {}): InboundMessage => ({ command: 'pong', node_id: node, researcher_id: 'me', ...extra });

function pongSpec(expected?: string[], deadlineMs: number | Map<string, number> = 5000) {
  return {
    what: 'ping',
    expected,
    deadlineMs,
    accept: (m: InboundMessage) => (m.command === 'pong' && m.researcher_id === 'me' ? { nodeId: String(m.node_id), reply: m } : undefined),
    acceptError: (m: InboundMessage) => (m.researcher_id === 'me' ? String(m.node_id) : undefined),
  };
}

describe('event-driven collection', () => {
  it('completes as soon as every expected node answered, long before the deadline', async () => {
    const router = new RequestRouter();
    const c = router.start(pongSpec(['a', 'b'], 10_000));
    const t0 = Date.now();
    setTimeout(() => router.dispatch(reply('a')), 5);
    setTimeout(() => router.dispatch(reply('b')), 10);
    const r = await c.result;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.complete).toBe(true);
    expect([...r.replies.keys()]).toEqual(['a', 'b']);
    expect(router.openCount).toBe(0);
  });

  it('ignores foreign, unexpected and duplicate replies', async () => {
    const router = new RequestRouter();
    const seen: string[] = [];
    const c = router.start({ ...pongSpec(['a', 'b'], 300), onOutcome: (o) => seen.push(`${o.nodeId}:${o.status}`) });
    expect(router.dispatch(reply('a', { researcher_id: 'someone-else' }))).toBe(false);
    expect(router.dispatch(reply('zzz'))).toBe(false);
    expect(router.dispatch(reply('a'))).toBe(true);
    expect(router.dispatch(reply('a'))).toBe(false);
    const r = await c.result;
    expect(r.complete).toBe(false);
    expect(r.timedOut).toEqual(['b']);
    expect(seen).toEqual(['a:replied', 'b:timeout']);
  });

  it('ends a node on an error message addressed to us; per-node deadlines expire separately', async () => {
    const router = new RequestRouter();
    const c = router.start(pongSpec(['a', 'b', 'c'], new Map([['a', 50], ['b', 5000], ['c', 5000]])));
    router.dispatch({ command: 'error', node_id: 'b', researcher_id: 'me', errnum: 'FB313: no dataset matching request', extra_msg: 'x' });
    router.dispatch({ command: 'error', node_id: 'c', researcher_id: 'other', errnum: 'FB300', extra_msg: '' });
    setTimeout(() => router.dispatch(reply('c')), 120);
    const r = await c.result;
    expect(r.errored).toEqual(['b']);
    expect(r.timedOut).toEqual(['a']);
    expect(r.replies.has('c')).toBe(true);
    const b = r.outcomes.get('b');
    expect(b).toMatchObject({ status: 'error', errnum: 'FB313: no dataset matching request', message: 'x' });
    expect(r.elapsedMs).toBeLessThan(4000);
  });

  it('open collections take one reply per node until the deadline', async () => {
    const router = new RequestRouter();
    const c = router.start(pongSpec(undefined, 80));
    router.dispatch(reply('x'));
    router.dispatch(reply('y'));
    router.dispatch(reply('x'));
    const r = await c.result;
    expect([...r.replies.keys()]).toEqual(['x', 'y']);
    expect(r.elapsedMs).toBeGreaterThanOrEqual(70);
    expect(router.dispatch(reply('z'))).toBe(false);
  });

  it('an empty expected set completes immediately; cancel ends the rest as timed out', async () => {
    const router = new RequestRouter();
    expect((await router.start(pongSpec([], 5000)).result).complete).toBe(true);
    const c = router.start(pongSpec(['a'], 60_000));
    router.cancelAll();
    expect((await c.result).timedOut).toEqual(['a']);
  });
});
