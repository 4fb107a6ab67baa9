// The server's /metrics in Prometheus' text format (version 0.0.4): gauges and counters read from the
// batcher's stats when scraped, and the step time as a histogram fed by the batcher's onStep.
import type { BatcherStats, StepInfo } from './batcher.js';

/** Upper bounds (seconds) of qkv_step_seconds' buckets. */
const STEP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  private readonly counts = new Array<number>(STEP_BUCKETS.length + 1).fill(0);
  private sum = 0;
  private steps = 0;
  /** Requests answered, by HTTP status. */
  private readonly responses = new Map<number, number>();

  /** Records one step (give this to createBatcher's onStep). */
  step = (s: StepInfo): void => {
    let i = 0;
    while (i < STEP_BUCKETS.length && s.seconds > STEP_BUCKETS[i]) i++;
    this.counts[i]++;
    this.sum += s.seconds;
    this.steps++;
  };

  /** Records a request's status. */
  response(status: number): void {
    this.responses.set(status, (this.responses.get(status) ?? 0) + 1);
  }

  /** The exposition text. */
  render(stats: BatcherStats): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, value: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    metric('qkv_requests_running', 'gauge', 'Requests admitted to the batch (prefilling or decoding).', stats.running);
    metric('qkv_requests_waiting', 'gauge', 'Requests waiting for room (new or preempted).', stats.waiting);
    metric('qkv_free_blocks', 'gauge', "Blocks of each layer's KV pool free, blocks held only by the prefix cache included.", stats.freeBlocks);
    metric('qkv_cached_blocks', 'gauge', 'Blocks the prefix cache holds.', stats.cachedBlocks);
    metric('qkv_generated_tokens_total', 'counter', 'Tokens generated.', stats.generatedTokens);
    metric('qkv_prompt_tokens_total', 'counter', 'Prompt tokens submitted.', stats.promptTokens);
    metric('qkv_cached_prompt_tokens_total', 'counter', 'Prompt tokens taken from the prefix cache instead of computed.', stats.cachedPromptTokens);
    metric('qkv_preemptions_total', 'counter', 'Requests preempted (freed and recomputed later).', stats.preemptions);
    lines.push('# HELP qkv_step_seconds Time of one batcher step (one forward over every running request, and sampling).', '# TYPE qkv_step_seconds histogram');
    let cumulative = 0;
    STEP_BUCKETS.forEach((le, i) => {
      cumulative += this.counts[i];
      lines.push(`qkv_step_seconds_bucket{le="${le}"} ${cumulative}`);
    });
    lines.push(`qkv_step_seconds_bucket{le="+Inf"} ${this.steps}`, `qkv_step_seconds_sum ${this.sum}`, `qkv_step_seconds_count ${this.steps}`);
    lines.push('# HELP qkv_http_responses_total HTTP responses by status.', '# TYPE qkv_http_responses_total counter');
    for (const [status, n] of [...this.responses].sort((a, b) => a[0] - b[0])) lines.push(`qkv_http_responses_total{status="${status}"} ${n}`);
    return `${lines.join('\n')}\n`;
  }
}
