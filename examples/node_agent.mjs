// A calculation agent on Node 22.12+, using the npm build: loads its pipeline,
// resolves a rule for a client with an override and for one without, reads
// the IRS limits, saves batch state with a version, appends an audit entry
// and writes a result file.
//
// In a project that has installed @bluestar/persistence:
//   BLUESTAR_BACKEND=memory node node_agent.mjs      (seed data shipped in the package)
//   BLUESTAR_AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 BLUESTAR_TABLE_SUFFIX=-dev \
//   BLUESTAR_S3_BUCKET=bluestar-files-dev BLUESTAR_REDIS_URL=redis://127.0.0.1:6379 node node_agent.mjs
import { randomUUID } from "node:crypto";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createPersistence, loadSeedData } from "@bluestar/persistence";

const PLAN = "DEFAULT_BiWeeklyFri";
const memory = process.env.BLUESTAR_BACKEND === "memory";
const configDir = fileURLToPath(new URL("./config", import.meta.resolve("@bluestar/persistence")));
const persistence = createPersistence({ data: memory ? await loadSeedData(configDir) : undefined });
try {
  const { rules, files } = persistence;
  const steps = await rules.getPipeline(PLAN);
  const own = await rules.getCalculationRule("ACME_CORP", "OVERTIME");
  const fallback = await rules.getCalculationRule("GLOBEX", "OVERTIME");
  const limits = await rules.getIrsLimits(2026);

  const batchId = `example-${randomUUID()}`;
  const now = new Date().toISOString();
  const state = {
    batchId,
    clientId: "ACME_CORP",
    planId: PLAN,
    status: "running",
    currentStep: steps.find((step) => step.agent === "calculation").step,
    version: 1,
    updatedAt: now,
    data: { overtimeThresholdHours: own.parameters.thresholdHours },
  };
  await rules.saveBatchState(batchId, state, { expectedVersion: 0 });
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

  const written = JSON.parse(new TextDecoder().decode(await files.read(resultPath)));
  const checks = [
    [`pipeline ${PLAN} has 26 steps`, steps.length === 26],
    [`ACME_CORP overtime is its own (${own.parameters.thresholdHours} h)`, own.scope === "CLIENT"],
    [`GLOBEX overtime falls back to GLOBAL (${fallback.parameters.thresholdHours} h)`, fallback.scope === "GLOBAL"],
    [`2026 wage base is ${limits.limits.socialSecurityWageBase}`, limits.limits.socialSecurityWageBase === "184500"],
    ["batch state saved at version 1", (await rules.getBatchState(batchId))?.version === 1],
    ["audit entry appended", (await rules.listAuditEntries(batchId)).length === 1],
    ["result file written and read back", written.own.ruleId === "OVERTIME"],
  ];
  for (const [label, ok] of checks) console.log(`${ok ? "ok  " : "FAIL"} ${label}`);
  if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
} finally {
  await persistence.close();
}
