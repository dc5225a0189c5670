export * from "../support/gate.ts";
