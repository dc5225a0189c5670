/**
 * `deno task check` step: every symbol `mod.ts` exports, and every public
 * member of an exported class or interface, has a doc comment. (`deno doc
 * --lint` checks this too, but also fails on the AWS SDK's own types that
 * the backends' options name.)
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import process from "node:process";

interface DocNode {
  name: string;
  jsDoc?: { doc?: string };
  accessibility?: string;
  isPrivate?: boolean;
}
interface Symbol {
  name: string;
  declarations: Array<{ jsDoc?: { doc?: string }; kind: string; def?: Record<string, DocNode[] | undefined> }>;
}

const json = execFileSync("deno", ["doc", "--json", "mod.ts"], {
  encoding: "utf8",
  maxBuffer: 64 << 20,
  stdio: ["ignore", "pipe", "ignore"],
});
const nodes = JSON.parse(json).nodes as Record<string, { symbols: Symbol[] }>;
const undocumented: string[] = [];
const documented = (doc?: { doc?: string }) => (doc?.doc ?? "").trim().length > 0;

for (const symbol of Object.values(nodes).flatMap((node) => node.symbols)) {
  for (const declaration of symbol.declarations) {
    if (!documented(declaration.jsDoc)) undocumented.push(symbol.name);
    for (const group of ["methods", "properties", "constructors", "indexSignatures"]) {
      for (const member of declaration.def?.[group] ?? []) {
        if (member.accessibility === "private" || member.isPrivate || member.name?.startsWith("#")) continue;
        if (!documented(member.jsDoc)) undocumented.push(`${symbol.name}.${member.name ?? group}`);
      }
    }
  }
}

if (undocumented.length > 0) {
  console.error(`Exported without a doc comment: ${[...new Set(undocumented)].join(", ")}`);
  process.exit(1);
}
console.log("Every export of mod.ts has a doc comment");
