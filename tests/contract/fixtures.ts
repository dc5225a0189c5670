// Reference data and builders the contract suites share.
import type { AuditEntry, BatchState, ProcessingResult, RulesData } from "../../mod.ts";

/** Ids that could forge another key, with what each tests. */
export const BAD_IDS: ReadonlyArray<[string, unknown]> = [
  ["empty", ""],
  ["a #", "A#B"],
  ["a NUL", "a\u0000b"],
  ["a newline", "a\nb"],
  ["a C1 control", "a\u0085b"],
  ["a lone surrogate", "a\ud800b"],
  ["over 256 bytes", "é".repeat(129)],
  ["leading space", " A"],
  ["not a string", 42],
];

/** Paths that must never reach a store. */
export const BAD_PATHS: ReadonlyArray<[string, unknown]> = [
  ["empty", ""],
  ["a leading slash", "/etc/passwd"],
  ["a .. segment", "in/../secret.csv"],
  ["a . segment", "in/./a.csv"],
  ["an empty segment", "in//a.csv"],
  ["a trailing slash", "in/"],
  ["a backslash", "in\\a.csv"],
  ["a control character", "in/a\u0007.csv"],
  ["over 1024 bytes", `in/${"x".repeat(1022)}`],
  ["not a string", null],
];

/** Every UTC offset a timestamp may carry, "-23:59" to "+23:59", a minute apart ("-00:00" and "+00:00" both). */
export const UTC_OFFSETS: readonly string[] = ["-", "+"].flatMap((sign) =>
  Array.from({ length: 24 * 60 }, (_, minutes) => {
    const hh = String(Math.floor(minutes / 60)).padStart(2, "0");
    return `${sign}${hh}:${String(minutes % 60).padStart(2, "0")}`;
  })
);

/** Names of Object.prototype's properties: a field so named must be refused like any unknown field. */
export const PROTOTYPE_NAMES: readonly string[] = Object.getOwnPropertyNames(Object.prototype);

/** A 38-digit decimal: DynamoDB's full precision. */
export const DECIMAL_38 = "1234567890123456789012345678.9012345678";

/** The reference data every rules-store contract test reads. */
export const RULES_FIXTURE: RulesData = {
  pipelineSteps: [300, 100, 200].map((step) => ({
    planId: "PLAN_A",
    step,
    name: `Step ${step}`,
    agent: "calculation" as const,
    action: `action_${step}`,
    required: step !== 300,
    timeoutSeconds: 60,
    retry: { maxAttempts: 3, backoffSeconds: 5 },
    calculationRules: step === 200 ? ["FICA_SS"] : [],
  })),
  validationRules: [
    {
      clientId: "GLOBAL",
      field: "ssn",
      ruleId: "ssn_required",
      ruleType: "required",
      severity: "error",
      message: "SSN is required",
    },
    {
      clientId: "GLOBAL",
      field: "ssn",
      ruleId: "ssn_format",
      ruleType: "pattern",
      pattern: "^\\d{3}-\\d{2}-\\d{4}$",
      severity: "error",
      message: "SSN must be NNN-NN-NNNN",
    },
    {
      clientId: "GLOBAL",
      field: "hours",
      ruleId: "hours_range",
      ruleType: "range",
      min: "0",
      max: "80.00",
      severity: "error",
      message: "Hours must be 0 to 80",
    },
    {
      clientId: "ACME",
      field: "hours",
      ruleId: "hours_range",
      ruleType: "range",
      min: "0",
      max: "100",
      severity: "warning",
      message: "Hours over 100 need review",
    },
  ],
  calculationRules: [
    {
      clientId: "GLOBAL",
      ruleId: "FICA_SS",
      ruleType: "percentage_up_to_wage_base",
      description: "Social Security, employee share",
      parameters: { rate: "0.062", wageBase: "184500.00" },
      effectiveFrom: "2026-01-01",
      effectiveTo: "2026-12-31",
    },
    {
      clientId: "GLOBAL",
      ruleId: "OVERTIME",
      ruleType: "multiplier",
      description: "FLSA overtime",
      parameters: { multiplier: "1.5", thresholdHours: "40" },
      effectiveFrom: "2024-01-01",
      effectiveTo: null,
    },
    {
      clientId: "ACME",
      ruleId: "OVERTIME",
      ruleType: "multiplier",
      description: "ACME overtime, by contract",
      parameters: { multiplier: "2", thresholdHours: "37.5", exact: DECIMAL_38 },
      effectiveFrom: "2024-01-01",
      effectiveTo: null,
    },
  ],
  irsLimits: [{
    year: 2026,
    limits: {
      electiveDeferral: "24500",
      socialSecurityWageBase: "184500.00",
      tiny: "0.1",
      big: "12345678901234567890",
    },
  }],
  agentConfigs: [{
    agent: "calculation",
    enabled: true,
    maxConcurrency: 4,
    settings: { precision: 2, mode: "strict" },
  }],
};

/** A unique id, so tests sharing one store never meet. */
export function uniqueId(label: string): string {
  return `${label}-${crypto.randomUUID()}`;
}

/** A valid batch state. */
export function batchState(batchId: string, overrides: Partial<BatchState> = {}): BatchState {
  return {
    batchId,
    clientId: "ACME",
    planId: "PLAN_A",
    status: "running",
    currentStep: 100,
    version: 1,
    updatedAt: "2026-11-27T10:00:00.000Z",
    data: { employees: 12, gross: "48210.55", nested: { list: [1, "two", null, true] } },
    ...overrides,
  };
}

/** A valid processing result. */
export function processingResult(
  batchId: string,
  step: string,
  overrides: Partial<ProcessingResult> = {},
): ProcessingResult {
  return {
    batchId,
    step,
    status: "succeeded",
    output: { employees: 12, gross: "48210.55" },
    error: null,
    startedAt: "2026-11-27T10:00:00.000Z",
    completedAt: "2026-11-27T10:00:01.250Z",
    ...overrides,
  };
}

/** A valid audit entry. */
export function auditEntry(batchId: string, entryId: string, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    entryId,
    batchId,
    timestamp: "2026-11-27T10:00:00.000Z",
    agent: "compliance",
    action: "rule_resolved",
    actor: "svc-compliance",
    details: { ruleId: "FICA_SS", scope: "GLOBAL", amount: "11439.00" },
    ...overrides,
  };
}

/** Deterministic pseudo-random bytes (every byte value occurs). */
export function noise(length: number, seed = 0x9e3779b9): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

/**
 * A web stream of the chunks, in order. `ReadableStream.from` would do, but
 * TypeScript's DOM library (which the npm build checks the tests against)
 * does not declare it.
 */
export function streamOf(chunks: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}
