// The resident memory a bench scenario adds, on Deno or Node.
import process from "node:process";

/** What {@linkcode measurePeakRss} saw. */
export interface PeakRss<T> {
  /** The RSS just before the run, in bytes. */
  before: number;
  /** The highest RSS sampled while it ran (every 5 ms, and once at the end), in bytes. */
  peak: number;
  /** How long it ran, in milliseconds. */
  ms: number;
  /** What it returned. */
  result: T;
}

/**
 * Runs `run` while sampling the process's RSS every 5 ms.
 *
 * @param run The scenario.
 * @returns The RSS before, the peak, the time and the result.
 */
export async function measurePeakRss<T>(run: () => Promise<T>): Promise<PeakRss<T>> {
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => peak = Math.max(peak, process.memoryUsage.rss()), 5);
  const started = performance.now();
  try {
    const result = await run();
    const ms = performance.now() - started;
    return { before, peak: Math.max(peak, process.memoryUsage.rss()), ms, result };
  } finally {
    clearInterval(sampler);
  }
}
