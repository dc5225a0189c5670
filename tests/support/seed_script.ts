// The seed script as a process, on whichever runtime runs the tests: Deno
// runs the TypeScript source, Node the compiled script of the npm build.
import { execFile } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const compiled = import.meta.url.endsWith(".js");

/** The repository root (under Node: the compiled tree, which has config/ and scripts/ too). */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** The seed files. */
export const CONFIG_DIR: string = join(ROOT, "config");

/** What a run of the script printed and how it ended. */
export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a script of `scripts/` (`seed_dynamodb`, `rules`) with arguments and an environment.
 *
 * @param name The script's name, without extension.
 * @param args The arguments.
 * @param env The whole environment of the process.
 * @returns Its exit code and output.
 */
export function runScript(
  name: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<ScriptResult> {
  const script = join(ROOT, "scripts", compiled ? `${name}.js` : `${name}.ts`);
  const runtimeArgs = compiled ? [script] : ["run", "-A", script];
  // Node 20 gets the AWS SDK's end-of-support warning on stderr, which is not the script's output.
  const runtimeEnv = compiled ? { ...env, NODE_NO_WARNINGS: "1" } : env;
  return new Promise((resolve) => {
    execFile(process.execPath, [...runtimeArgs, ...args], { cwd: ROOT, env: runtimeEnv }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

/**
 * Runs `scripts/seed_dynamodb` with arguments and an environment.
 *
 * @param args The arguments.
 * @param env The whole environment of the process.
 * @returns Its exit code and output.
 */
export function runSeedScript(args: string[], env: Record<string, string | undefined>): Promise<ScriptResult> {
  return runScript("seed_dynamodb", args, env);
}
