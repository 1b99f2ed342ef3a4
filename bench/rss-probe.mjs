// Preloaded (`node --import`) into the appsctl process the benchmark measures: at exit, writes the process's peak
// resident set size to the file named by BENCH_RSS_OUT. The peak is the kernel's high-water mark of this process's
// memory (VmHWM in /proc/self/status), so it covers the whole run, not a sample of it. getrusage's maxRSS is written
// too but not used: on Linux it survives execve, so a child reports its parent's size at fork when that was larger.
// Samples of process.memoryUsage() every 50 ms say what the memory was made of when RSS was highest.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.BENCH_RSS_OUT;
const started = performance.now();
if (out) {
  let atPeak = process.memoryUsage();
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > atPeak.rss) atPeak = m;
  };
  setInterval(sample, 50).unref();
  process.on('exit', (code) => {
    sample();
    let vmHwmKb;
    try {
      vmHwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    } catch {
      vmHwmKb = undefined;
    }
    const mib = (n) => Number((n / 1048576).toFixed(1));
    writeFileSync(
      out,
      JSON.stringify({
        code,
        vmHwmKb,
        maxRssKb: process.resourceUsage().maxRSS,
        atPeakMiB: { rss: mib(atPeak.rss), heapTotal: mib(atPeak.heapTotal), heapUsed: mib(atPeak.heapUsed), external: mib(atPeak.external), arrayBuffers: mib(atPeak.arrayBuffers) },
        ms: performance.now() - started,
      }),
    );
  });
}
