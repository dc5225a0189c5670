/**
 * A calculation agent on Deno: loads its pipeline, resolves a rule for a
 * client with an override and for one without, reads the IRS limits, saves
 * batch state with a version, appends an audit entry and writes a result file.
 *
 * In memory (no services; loads the seed data from config/):
 *   BLUESTAR_BACKEND=memory deno run -A examples/deno_agent.ts
 * On a local AWS endpoint and Redis, after
 * `deno task seed --endpoint-url http://127.0.0.1:4566 --table-suffix -dev --s3-bucket bluestar-files-dev`:
 *   BLUESTAR_AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 BLUESTAR_TABLE_SUFFIX=-dev \
 *   BLUESTAR_S3_BUCKET=bluestar-files-dev BLUESTAR_REDIS_URL=redis://127.0.0.1:6379 \
 *   deno run -A examples/deno_agent.ts
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { createPersistence, loadSeedData } from "../mod.ts";

const PLAN = "DEFAULT_BiWeeklyFri";
const CLIENT_WITH_OVERRIDE = "ACME_CORP";
const CLIENT_WITHOUT_OVERRIDE = "GLOBEX";

const memory = process.env.BLUESTAR_BACKEND === "memory";
const persistence = createPersistence({
  data: memory ? await loadSeedData(fileURLToPath(new URL("../config", import.meta.url))) : undefined,
});
try {
  const { rules, files } = persistence;
  const steps = await rules.getPipeline(PLAN);
  const calculationSteps = steps.filter((step) => step.agent === "calculation");

  const own = await rules.getCalculationRule(CLIENT_WITH_OVERRIDE, "OVERTIME");
  const fallback = await rules.getCalculationRule(CLIENT_WITHOUT_OVERRIDE, "OVERTIME");
  const limits = await rules.getIrsLimits(2026);

  const batchId = `example-${crypto.randomUUID()}`;
  const now = new Date().toISOString();
  await rules.saveBatchState(batchId, {
    batchId,
    clientId: CLIENT_WITH_OVERRIDE,
    planId: PLAN,
    status: "running",
    currentStep: calculationSteps[0].step,
    version: 1,
    updatedAt: now,
    data: { overtimeThresholdHours: own.parameters.thresholdHours },
  }, { expectedVersion: 0 });
  await rules.appendAuditEntry({
    entryId: "calc-0001",
    batchId,
    timestamp: now,
    agent: "calculation",
    action: "rule_resolved",
    actor: "example-agent",
    details: { ruleId: own.ruleId, scope: own.scope, clientId: own.clientId },
  });
  const resultPath = `results/${batchId}/overtime.json`;
  await files.write(resultPath, JSON.stringify({ own, fallback, wageBase: limits.limits.socialSecurityWageBase }));

  const state = await rules.getBatchState(batchId);
  const audit = await rules.listAuditEntries(batchId);
  const written = JSON.parse(new TextDecoder().decode(await files.read(resultPath)));
  const checks: Array<[string, boolean]> = [
    [`pipeline ${PLAN} has 26 steps`, steps.length === 26],
    [`${CLIENT_WITH_OVERRIDE} overtime is its own (${own.parameters.thresholdHours} h)`, own.scope === "CLIENT"],
    [
      `${CLIENT_WITHOUT_OVERRIDE} overtime falls back to GLOBAL (${fallback.parameters.thresholdHours} h)`,
      fallback.scope === "GLOBAL",
    ],
    [`2026 wage base is ${limits.limits.socialSecurityWageBase}`, limits.limits.socialSecurityWageBase === "184500"],
    ["batch state saved at version 1", state?.version === 1],
    ["audit entry appended", audit.length === 1],
    ["result file written and read back", written.own.ruleId === "OVERTIME"],
  ];
  for (const [label, ok] of checks) console.log(`${ok ? "ok  " : "FAIL"} ${label}`);
  if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
} finally {
  await persistence.close();
}
