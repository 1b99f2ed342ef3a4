// Entry of the proxy process (dist/bench/proxy.mjs): `node proxy.mjs TARGET DELAY_MS`, driven over IPC by
// bench/proxy-process.ts.
import { startProxy } from './proxy';
import type { ProxyReply, ProxyRequest } from './proxy-process';

const [target, delay] = process.argv.slice(2);
if (!target || !process.send) throw new Error('usage: fork(proxy.mjs, [TARGET, DELAY_MS]) with an IPC channel');
const proxy = await startProxy(target, Number(delay ?? 0));
const send = (m: ProxyReply) => process.send!(m);
process.on('message', (m: ProxyRequest) => {
  void (async () => {
    try {
      switch (m.op) {
        case 'setDelay':
          proxy.setDelay(m.ms);
          return send({ id: m.id });
        case 'reset':
          proxy.reset();
          return send({ id: m.id });
        case 'snapshot':
          return send({ id: m.id, result: { stats: proxy.stats(), records: proxy.records() } });
        case 'close':
          await proxy.close();
          send({ id: m.id });
          process.disconnect();
          return;
      }
    } catch (err) {
      send({ id: m.id, error: (err as Error).message });
    }
  })();
});
// The parent going away (killed, crashed) must not leave the proxy running.
process.on('disconnect', () => {
  void proxy.close().finally(() => process.exit(0));
});
send({ ready: proxy.url });
