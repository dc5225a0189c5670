// Process B of the two-process tests and of the invalidation bench: a store on
// the same tables and the same Redis as the parent's, that changes a
// calculation rule on each line of stdin and answers when the change returned.
//
//   rule_writer '{"suffix": "-x", "redis": {"url": "redis://..."} | {"clusterNodes": [...]}}'
//   stdin:  {"clientId": "ACME", "ruleId": "FICA_SS", "rate": "0.07"}   (one per line)
//   stdout: {"done": 1, "at": <epoch ms, sub-ms>}                        (one per change)
//
// The change is an audited `putCalculationRule`: a correction of the version
// the rule has from 2026-01-01 (or a new version when it has none), which
// writes the owner's entry through to Redis and then drops it, through the
// bus, from every process's in-process tier.
import process from "node:process";
import { createInterface } from "node:readline";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type CalculationRuleInput, RedisCacheBackend, RedisInvalidationBus } from "../../mod.ts";
import { DynamoDBRulesStore } from "../../src/persistence/dynamodb_backend.ts";
import { AWS_ENDPOINT_URL, useLocalAwsCredentials } from "./gate.ts";

useLocalAwsCredentials();
const { suffix, redis } = JSON.parse(process.argv[2]) as {
  suffix: string;
  redis: { url: string } | { clusterNodes: string[] };
};
const client = new DynamoDBClient({ endpoint: AWS_ENDPOINT_URL, region: process.env.AWS_REGION });
const cache = new RedisCacheBackend(redis);
const bus = new RedisInvalidationBus({ ...redis, namespace: suffix });
const store = new DynamoDBRulesStore({ client, tableSuffix: suffix, cache, invalidationBus: bus });

/** The revision of each rule's version from 2026-01-01, as the last change left it. */
const revisions = new Map<string, number | undefined>();

/** Corrects (or adds) the rule's version from 2026-01-01, audited; the store drops its cached reads everywhere. */
async function changeRule(rule: CalculationRuleInput): Promise<void> {
  const id = `${rule.clientId}\u0000${rule.ruleId}`;
  if (!revisions.has(id)) {
    const stored = await store.listCalculationRuleVersions(rule.clientId, rule.ruleId);
    revisions.set(id, stored.find((version) => version.effectiveFrom === rule.effectiveFrom)?.revision);
  }
  const changed = await store.putCalculationRule(rule, {
    actor: "rule_writer",
    reason: "two-process test",
    expectedRevision: revisions.get(id),
  });
  revisions.set(id, changed.revision);
}

// A running writer has its connections up: wait for the cache and the bus before the first change, so that
// a change returns once its invalidation is published, not while the bus is still connecting.
await cache.get("bluestar-rule-writer-warm-up").catch(() => null);
for (let tries = 0; tries < 500 && !bus.isLive(); tries++) await new Promise((resolve) => setTimeout(resolve, 10));

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  const { clientId, ruleId, rate } = JSON.parse(line) as { clientId: string; ruleId: string; rate: string };
  await changeRule({
    clientId,
    ruleId,
    ruleType: "percentage",
    description: "Changed by rule_writer",
    parameters: { rate },
    effectiveFrom: "2026-01-01",
    effectiveTo: null,
  });
  console.log(JSON.stringify({ done: 1, at: performance.timeOrigin + performance.now() }));
}
await store.close();
await Promise.all([cache.close(), bus.close()]);
client.destroy();
