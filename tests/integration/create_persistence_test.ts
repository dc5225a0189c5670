// createPersistence() for aws on the local endpoint and Redis: wired from the
// environment alone, the rules store reading through the Redis cache, and
// close() releasing every connection.
import assert from "node:assert/strict";
import { it } from "node:test";
import { createPersistence, type PersistenceEvent, ruleVersionsCacheKey } from "../../mod.ts";
import { uniqueId } from "../contract/fixtures.ts";
import { freshEnvironment } from "../support/environment.ts";
import { AWS_ENDPOINT_URL, integrationSuite, probe, REDIS_URL } from "../support/gate.ts";

const unreachable = (await probe(AWS_ENDPOINT_URL)) ?? (await probe(REDIS_URL));

integrationSuite("createPersistence() on the local endpoint and Redis", unreachable, () => {
  const environment = freshEnvironment("factory");
  const suffix = environment.suffix;

  it("wires DynamoDB through Redis and S3 from the environment; the second read is a cache hit", async () => {
    const events: PersistenceEvent[] = [];
    const persistence = createPersistence({
      env: environment.env(),
      onEvent: (event) => events.push(event),
    });
    assert.equal(persistence.config.cacheTimeoutMs, 2000);
    try {
      // Connected first: the first read's cache lookup is bounded by cacheTimeoutMs, which a connect on a loaded
      // machine can exceed (a cache.error, then DynamoDB: right, but not the path this test follows).
      assert.equal(await persistence.cache!.get(uniqueId("warm-up")), null);
      const clientId = uniqueId("client");
      const own = ruleVersionsCacheKey(suffix, "calculation", "FICA_SS", clientId);
      const global = ruleVersionsCacheKey(suffix, "calculation", "FICA_SS", "GLOBAL");
      const first = await persistence.rules.getCalculationRule(clientId, "FICA_SS");
      // The in-process tier keeps the rule only once the bus is live, which a loaded machine may delay: the
      // second read is then a Redis hit, once the first read's write-backs have landed (within the timeout).
      for (let tries = 0; tries < 100; tries++) {
        if ((await persistence.cache!.get(own)) !== null && (await persistence.cache!.get(global)) !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const second = await persistence.rules.getCalculationRule(clientId, "FICA_SS");
      assert.deepEqual(second, first);
      assert.equal(first.scope, "GLOBAL");
      const kinds = events.map((event) => event.type).filter((type) =>
        type.startsWith("cache.") || type.startsWith("dynamodb.")
      );
      // One entry per owner: the client's own versions (none) and GLOBAL's.
      assert.deepEqual(kinds, [
        "cache.miss",
        "cache.miss",
        "dynamodb.request",
        "dynamodb.response",
        "cache.hit",
        "cache.hit",
      ]);
      const { scope: _, ...version } = first;
      assert.deepEqual(
        await persistence.cache!.get(own),
        { clientId, ruleId: "FICA_SS", revision: 0, versions: [] },
        "the client's emptiness is cached under its own key",
      );
      assert.deepEqual(await persistence.cache!.get(global), {
        clientId: "GLOBAL",
        ruleId: "FICA_SS",
        revision: 1,
        versions: [version],
      });
      await persistence.cache!.delete(own);
      await persistence.cache!.delete(global);

      await persistence.files.write("results/summary.json", '{"ok":true}');
      assert.equal(new TextDecoder().decode(await persistence.files.read("results/summary.json")), '{"ok":true}');
    } finally {
      await persistence.close();
    }
    await assert.rejects(persistence.rules.getIrsLimits(2026), /closed/i);
  });
});
